import type { FuzzTarget } from './harness.js';
import { mqttTarget } from './mqtt.js';

export const targets: Record<string, FuzzTarget> = {
  mqtt: mqttTarget,
};
