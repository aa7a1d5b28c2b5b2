import type { DpsStore } from '../store/dps.js';
import { ensureDefaultDpsPolicies } from './auth/policies.js';
import { dpsInstance, ensureIdScope, ensureTpmKeySecret, type DpsInstance } from './instance.js';
import { dpsInfo, type DpsInfo } from './info.js';

type DpsConfigView = Parameters<typeof dpsInstance>[0];

/** Creates what a DPS needs on first start (policies, id scope) and returns the instance. */
export async function prepareDps(store: DpsStore, config: DpsConfigView): Promise<DpsInstance> {
  await ensureDefaultDpsPolicies(store.policies);
  return { ...dpsInstance(config, await ensureIdScope(store.settings)), tpmKeySecret: await ensureTpmKeySecret(store.settings) };
}

export async function describeDps(store: DpsStore, config: DpsConfigView): Promise<DpsInfo> {
  const instance = await prepareDps(store, config);
  return dpsInfo(instance, await store.policies.list());
}
