/** Device and module twins, in the shape IoT Hub stores and returns them. */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * `$metadata` mirrors the property tree: every node carries `$lastUpdated` (and, in desired
 * properties, `$lastUpdatedVersion`), nested objects carry the metadata of their members.
 */
export interface MetadataNode {
  $lastUpdated: string;
  $lastUpdatedVersion?: number;
  [key: string]: MetadataNode | string | number | undefined;
}

/** A properties section as IoT Hub returns it: the values plus `$metadata` and `$version`. */
export type TwinProperties = JsonObject & { $metadata: MetadataNode; $version: number };

/** What is stored for a twin: the parts the twin owns (the rest comes from the identity record). */
export interface TwinState {
  deviceId: string;
  /** '' for a device twin. */
  moduleId: string;
  /** Increases by one with every change of tags, desired or reported properties. */
  version: number;
  etag: string;
  tags: JsonObject;
  desired: TwinProperties;
  reported: TwinProperties;
  /** Each configuration that targets this twin, with its status (the twin's `configurations` section). */
  configurations?: Record<string, TwinConfigurationStatus>;
  /**
   * What configurations wrote into the desired properties, by content path
   * (`properties.desired.a.b`), so that it can be taken out again; never shown.
   */
  configurationContent?: Record<string, { configurationId: string; value: JsonValue }>;
}

/**
 * `Applied`: at least one of the configuration's paths won (highest priority, then newest);
 * `Targeted`: the twin matches the target condition but other configurations won every path.
 */
export interface TwinConfigurationStatus {
  status: 'Targeted' | 'Applied';
}

/** The twin document of `GET /twins/{id}` (and the module form). */
export interface Twin {
  deviceId: string;
  moduleId?: string;
  etag: string;
  deviceEtag: string;
  status: 'enabled' | 'disabled';
  statusReason?: string | null;
  statusUpdateTime: string;
  connectionState: 'Connected' | 'Disconnected';
  lastActivityTime: string;
  cloudToDeviceMessageCount: number;
  authenticationType: string;
  x509Thumbprint: { primaryThumbprint: string | null; secondaryThumbprint: string | null };
  modelId: string;
  version: number;
  capabilities?: { iotEdge: boolean };
  deviceScope?: string;
  parentScopes?: string[];
  tags?: JsonObject;
  properties: { desired: TwinProperties; reported: TwinProperties };
  configurations?: Record<string, TwinConfigurationStatus>;
}

/** A change of desired properties, as devices are told about it. */
export interface DesiredPropertiesChange {
  deviceId: string;
  moduleId?: string;
  /** The patch (null = removed) with `$version` set to the new desired version. */
  patch: JsonObject & { $version: number };
}

/**
 * A committed change of a twin's tags or properties. `update` covers every patch (service PATCH,
 * jobs, configurations, the device's reported patches); `replace` is the service's PUT.
 */
export interface TwinChange {
  deviceId: string;
  moduleId?: string;
  kind: 'update' | 'replace';
  /** The twin as written. */
  twin: TwinState;
  /** What changed, as merge patches (null = removed); a section that did not change is absent. */
  tags?: JsonObject;
  desired?: JsonObject;
  reported?: JsonObject;
}
