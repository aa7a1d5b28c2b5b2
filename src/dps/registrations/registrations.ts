import type { RegistrationStore } from '../../store/dps.js';
import { dpsErrors } from '../errors.js';
import { encodeContinuation, parseQuery } from '../enrollments/query.js';
import type { DeviceRegistrationState } from '../types.js';

/** Device registration states (written by registration in part 2; read and deleted here). */
export class RegistrationStates {
  constructor(private readonly registrations: RegistrationStore) {}

  async get(registrationId: string): Promise<DeviceRegistrationState> {
    const r = await this.registrations.get(registrationId);
    if (!r) throw dpsErrors.registrationNotFound(registrationId);
    return r.state;
  }

  async delete(registrationId: string, ifMatch?: string): Promise<void> {
    const result = await this.registrations.delete(registrationId, ifMatch === '*' ? undefined : ifMatch);
    if (result === 'notFound') throw dpsErrors.registrationNotFound(registrationId);
    if (result === 'etagMismatch') throw dpsErrors.preconditionFailed('registration state');
  }

  async queryForGroup(enrollmentGroupId: string, spec: unknown, maxItemCount?: string, continuation?: string) {
    const q = parseQuery(spec, maxItemCount, continuation);
    // Registration records outlive their group (as in DPS), so an unknown group is not an error.
    const page = await this.registrations.listForGroup(enrollmentGroupId, q.pageSize, q.after);
    return { items: page.items, continuation: page.continuation && encodeContinuation(page.continuation) };
  }
}
