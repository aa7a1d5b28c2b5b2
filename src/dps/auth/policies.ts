import { generateKey } from '../../core/ids.js';
import type { DpsPolicyStore } from '../../store/dps.js';
import type { DpsPermission, DpsSharedAccessPolicy } from '../types.js';

/**
 * Azure creates every DPS with `provisioningserviceowner`. The narrower ones are Fleethub's
 * defaults for back ends that should only read or only manage enrollments.
 */
export const defaultDpsPolicyRights: Record<string, DpsPermission[]> = {
  provisioningserviceowner: [
    'ServiceConfig',
    'EnrollmentRead',
    'EnrollmentWrite',
    'DeviceConnect',
    'RegistrationStatusRead',
    'RegistrationStatusWrite',
  ],
  enrollmentread: ['EnrollmentRead', 'RegistrationStatusRead'],
  enrollmentwrite: ['EnrollmentRead', 'EnrollmentWrite', 'RegistrationStatusRead', 'RegistrationStatusWrite'],
};

export async function ensureDefaultDpsPolicies(store: DpsPolicyStore): Promise<DpsSharedAccessPolicy[]> {
  for (const [keyName, rights] of Object.entries(defaultDpsPolicyRights)) {
    if (!(await store.get(keyName))) {
      await store.put({ keyName, rights, primaryKey: generateKey(), secondaryKey: generateKey() });
    }
  }
  return store.list();
}
