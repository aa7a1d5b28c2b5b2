/** Automatic device and module management: IoT Hub's Configuration resource. */
import type { JsonObject, JsonValue } from '../twins/types.js';

export interface ConfigurationContent {
  /** Content path (`properties.desired…`) → value, written into targeted device twins. */
  deviceContent?: Record<string, JsonValue>;
  /** The same for module twins (target condition `FROM devices.modules WHERE …`). */
  moduleContent?: Record<string, JsonValue>;
  /** IoT Edge deployments: module name → `{ "properties.desired": {…} }`. */
  modulesContent?: Record<string, JsonObject>;
}

export interface ConfigurationMetrics {
  results: Record<string, number>;
  queries: Record<string, string>;
}

/** The resource as `GET /configurations/{id}` returns it. */
export interface Configuration {
  id: string;
  schemaVersion: string;
  labels: Record<string, string>;
  content: ConfigurationContent;
  targetCondition: string;
  createdTimeUtc: string;
  lastUpdatedTimeUtc: string;
  priority: number;
  systemMetrics: ConfigurationMetrics;
  metrics: ConfigurationMetrics;
  etag: string;
}

/** What is stored: the resource without metric results, which the evaluation records apart. */
export type StoredConfiguration = Omit<Configuration, 'systemMetrics' | 'metrics'> & {
  metrics: { queries: Record<string, string> };
};

/** Metric results from the last evaluation (they do not change the etag). */
export interface ConfigurationMetricResults {
  system: Record<string, number>;
  custom: Record<string, number>;
}
