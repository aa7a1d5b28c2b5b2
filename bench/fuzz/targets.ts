import type { FuzzTarget } from './harness.js';
import { mqttTarget } from './mqtt.js';
import { amqpTarget } from './amqp.js';
import { httpTarget } from './http.js';

export const targets: Record<string, FuzzTarget> = {
  mqtt: mqttTarget,
  amqp: amqpTarget,
  http: httpTarget,
};
