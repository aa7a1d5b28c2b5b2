import type { Jobs } from '../../jobs/jobs.js';
import type { RoutingEvents } from './emitter.js';
import { nonTelemetryMessage } from './messages.js';

/**
 * DeviceJobLifecycleEvents: a device's part of a scheduled job (twin update or direct method)
 * ended. IoT Hub names this route source but does not document its events; Fleethub's follow the
 * other non-telemetry events: `opType` `deviceJobCompleted` or `deviceJobFailed`, schema
 * `deviceJobLifecycleNotification`, and the device job as `SELECT * FROM devices.jobs` returns it.
 */
export function jobLifecycleEvents(jobs: Jobs, events: RoutingEvents): () => void {
  return jobs.onDeviceJobEnd((record) => {
    if (!events.active) return;
    events.emit(
      nonTelemetryMessage({
        source: 'DeviceJobLifecycleEvents',
        schema: 'deviceJobLifecycleNotification',
        opType: record.status === 'completed' ? 'deviceJobCompleted' : 'deviceJobFailed',
        hubName: events.hubName,
        deviceId: record.deviceId,
        body: record,
        at: events.now(),
      }),
    );
  });
}
