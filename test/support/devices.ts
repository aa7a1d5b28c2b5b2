/** Device-side helpers for the MQTT tests: identities, connection strings, and reading the event log. */
import iothub from 'azure-iothub';
import type { StoredEvent } from '../../src/store/index.js';
import { partitionFor } from '../../src/hub/messaging/eventLogWriter.js';
import type { TestHub } from './hub.js';

export async function createDevice(t: TestHub, deviceId: string, extra: Record<string, unknown> = {}): Promise<{ key: string; connectionString: string }> {
  const registry = iothub.Registry.fromConnectionString(await t.connectionString());
  const { responseBody } = await registry.create({ deviceId, ...extra } as any);
  const key = responseBody.authentication?.symmetricKey?.primaryKey ?? '';
  return { key, connectionString: `HostName=${t.host};DeviceId=${deviceId};SharedAccessKey=${key}` };
}

export async function createModule(t: TestHub, deviceId: string, moduleId: string): Promise<{ key: string; connectionString: string }> {
  const registry = iothub.Registry.fromConnectionString(await t.connectionString());
  const { responseBody } = await registry.addModule({ deviceId, moduleId } as any);
  const key = (responseBody as any).authentication.symmetricKey.primaryKey as string;
  return { key, connectionString: `HostName=${t.host};DeviceId=${deviceId};ModuleId=${moduleId};SharedAccessKey=${key}` };
}

/** Every event of a device in the event log, in order. */
export async function eventsOf(t: TestHub, deviceId: string, moduleId?: string): Promise<StoredEvent[]> {
  const log = t.hub.store.eventLog;
  const partition = partitionFor(deviceId, t.hub.config.eventLog.partitions);
  const all = await log.read(partition, { sequenceNumber: 0, inclusive: true }, 100_000);
  return all.filter(
    (e) => e.systemProperties['iothub-connection-device-id'] === deviceId && e.systemProperties['iothub-connection-module-id'] === moduleId,
  );
}

/** Polls until `check` returns a value (not undefined/false) or the time is up. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
