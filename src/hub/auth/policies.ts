import { generateKey } from '../../core/ids.js';
import { HubError } from '../../core/errors.js';
import type { PolicyStore } from '../../store/index.js';
import type { Permission, SharedAccessPolicy } from './types.js';

/** The policies every IoT hub is created with. */
export const defaultPolicyRights: Record<string, Permission[]> = {
  iothubowner: ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'],
  service: ['ServiceConnect'],
  device: ['DeviceConnect'],
  registryRead: ['RegistryRead'],
  registryReadWrite: ['RegistryRead', 'RegistryWrite'],
};

/** Creates the default policies (with fresh keys) that the store does not have yet. */
export async function ensureDefaultPolicies(store: PolicyStore): Promise<SharedAccessPolicy[]> {
  for (const [keyName, rights] of Object.entries(defaultPolicyRights)) {
    if (!(await store.get(keyName))) {
      await store.put({ keyName, rights, primaryKey: generateKey(), secondaryKey: generateKey() });
    }
  }
  return store.list();
}

export async function regeneratePolicyKey(
  store: PolicyStore,
  keyName: string,
  which: 'primary' | 'secondary',
): Promise<SharedAccessPolicy> {
  const policy = await store.get(keyName);
  if (!policy) throw new HubError('NotFound', `Shared access policy '${keyName}' does not exist`);
  const updated = { ...policy, [which === 'primary' ? 'primaryKey' : 'secondaryKey']: generateKey() };
  await store.put(updated);
  return updated;
}
