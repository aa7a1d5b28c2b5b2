import type { DeviceStore, ModuleStore } from '../../store/index.js';
import type { DeviceConnections } from './deviceConnections.js';

/**
 * The device and module stores as the registry should see them: a device that is disabled or
 * deleted, or a module that is deleted, loses its live connections at once, as in IoT Hub
 * (otherwise it would keep sending until its next CONNECT).
 */
export function closingConnectionsOnChange(
  devices: DeviceStore,
  modules: ModuleStore,
  connections: DeviceConnections,
): { devices: DeviceStore; modules: ModuleStore } {
  const watchedDevices: DeviceStore = Object.assign(Object.create(devices) as DeviceStore, {
    async replace(...args: Parameters<DeviceStore['replace']>) {
      const result = await devices.replace(...args);
      if (result === 'ok' && args[0].status === 'disabled') connections.closeIdentity(args[0].deviceId, undefined, 'the device was disabled');
      return result;
    },
    async delete(...args: Parameters<DeviceStore['delete']>) {
      const result = await devices.delete(...args);
      if (result === 'ok') connections.closeIdentity(args[0], undefined, 'the device was deleted');
      return result;
    },
  });
  const watchedModules: ModuleStore = Object.assign(Object.create(modules) as ModuleStore, {
    async delete(...args: Parameters<ModuleStore['delete']>) {
      const result = await modules.delete(...args);
      if (result === 'ok') connections.closeIdentity(args[0], args[1], 'the module was deleted');
      return result;
    },
  });
  return { devices: watchedDevices, modules: watchedModules };
}
