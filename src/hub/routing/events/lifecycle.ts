import type { DeviceStore, ModuleStore, TwinStore } from '../../../store/index.js';
import type { TwinState } from '../../twins/types.js';
import type { RoutingEvents } from './emitter.js';
import { nonTelemetryMessage } from './messages.js';
import { twinBody } from './twinChanges.js';

/**
 * DeviceLifecycleEvents: the device and module stores as the registry should see them, telling
 * routing of every identity created or deleted, whoever did it (registry API, bulk registry
 * operations, import jobs, provisioning). The body is the twin: as created, or as it was just
 * before the deletion.
 */
export function lifecycleEventsOnChange(
  devices: DeviceStore,
  modules: ModuleStore,
  twins: TwinStore,
  events: RoutingEvents,
): { devices: DeviceStore; modules: ModuleStore } {
  const emit = (opType: string, twin: TwinState | undefined, deviceId: string, moduleId?: string) => {
    events.emit(
      nonTelemetryMessage({
        source: 'DeviceLifecycleEvents',
        schema: moduleId ? 'moduleLifecycleNotification' : 'deviceLifecycleNotification',
        opType,
        hubName: events.hubName,
        deviceId,
        moduleId,
        body: twin ? twinBody(twin) : { deviceId, ...(moduleId ? { moduleId } : {}) },
        at: events.now(),
      }),
    );
  };
  // The twin is read only when someone listens; a failed read never fails the registry's write.
  const twinOf = async (deviceId: string, moduleId?: string) => (events.active ? twins.get(deviceId, moduleId).catch(() => undefined) : undefined);

  const watchedDevices: DeviceStore = Object.assign(Object.create(devices) as DeviceStore, {
    async insert(...args: Parameters<DeviceStore['insert']>) {
      const inserted = await devices.insert(...args);
      if (inserted && events.active) emit('createDeviceIdentity', await twinOf(args[0].deviceId), args[0].deviceId);
      return inserted;
    },
    async delete(...args: Parameters<DeviceStore['delete']>) {
      const before = await twinOf(args[0]);
      const result = await devices.delete(...args);
      if (result === 'ok' && events.active) emit('deleteDeviceIdentity', before, args[0]);
      return result;
    },
  });
  const watchedModules: ModuleStore = Object.assign(Object.create(modules) as ModuleStore, {
    async insert(...args: Parameters<ModuleStore['insert']>) {
      const inserted = await modules.insert(...args);
      if (inserted && events.active) emit('createModuleIdentity', await twinOf(args[0].deviceId, args[0].moduleId), args[0].deviceId, args[0].moduleId);
      return inserted;
    },
    async delete(...args: Parameters<ModuleStore['delete']>) {
      const before = await twinOf(args[0], args[1]);
      const result = await modules.delete(...args);
      if (result === 'ok' && events.active) emit('deleteModuleIdentity', before, args[0], args[1]);
      return result;
    },
  });
  return { devices: watchedDevices, modules: watchedModules };
}
