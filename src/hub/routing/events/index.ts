import type { Logger } from 'pino';
import type { DeviceConnections } from '../../connections/deviceConnections.js';
import type { Jobs } from '../../jobs/jobs.js';
import type { Twins } from '../../twins/twins.js';
import type { RoutingIngest } from '../types.js';
import { connectionStateEvents } from './connectionState.js';
import { RoutingEvents } from './emitter.js';
import { jobLifecycleEvents } from './jobLifecycle.js';
import { twinChangeEvents } from './twinChanges.js';

export { RoutingEvents } from './emitter.js';
export { lifecycleEventsOnChange } from './lifecycle.js';
export { ConnectionSequence } from './connectionState.js';
export { nonTelemetryMessage, MESSAGE_SOURCES } from './messages.js';

/**
 * The non-telemetry event sources of one hub. Lifecycle events come from the identity stores
 * (`lifecycleEventsOnChange`, composed where the registry is built); the others listen to their
 * services here. Events go to `ingest` once attached (`events.attach`).
 */
export function routingEventSources(deps: {
  hubName: string;
  logger: Logger;
  twins: Twins;
  connections: DeviceConnections;
  jobs: Jobs;
  events?: RoutingEvents;
  ingest?: RoutingIngest;
}): { events: RoutingEvents; stop(): void } {
  const events = deps.events ?? new RoutingEvents(deps.hubName, deps.logger);
  if (deps.ingest) events.attach(deps.ingest);
  const stops = [twinChangeEvents(deps.twins, events), connectionStateEvents(deps.connections, events), jobLifecycleEvents(deps.jobs, events)];
  return {
    events,
    stop: () => {
      for (const stop of stops) stop();
    },
  };
}
