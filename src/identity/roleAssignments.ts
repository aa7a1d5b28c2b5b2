import type { IdentityStore } from '../store/identity.js';
import { IdentityError } from './errors.js';
import { GUID, normalizeScope, scopeCovers } from './resourceIds.js';
import { findRole, roleDefinitionResourceId, roleGrants } from './roles.js';
import type { AccessControl, Principals, RoleAssignment, RoleAssignments } from './types.js';

/**
 * Role assignments at any scope, inherited by everything below it, with ARM's refusals: an unknown
 * role or principal, a malformed name, the same role for the same principal at the same scope twice.
 */
export class StoredRoleAssignments implements RoleAssignments {
  constructor(
    private readonly store: IdentityStore,
    private readonly principals: Principals,
    private readonly subscriptionId: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  get(id: string) {
    return this.store.roleAssignment(id.replace(/\/{2,}/g, '/'));
  }

  async list(filter: { scope?: string; atScopeAndBelow?: boolean; inherited?: boolean; principalId?: string } = {}): Promise<RoleAssignment[]> {
    const all = await this.store.roleAssignments();
    return all.filter((a) => {
      if (filter.principalId && a.principalId.toLowerCase() !== filter.principalId.toLowerCase()) return false;
      if (filter.scope === undefined) return true;
      if (normalizeScope(a.scope) === normalizeScope(filter.scope)) return true;
      return (filter.atScopeAndBelow === true && scopeCovers(filter.scope, a.scope)) || (filter.inherited === true && scopeCovers(a.scope, filter.scope));
    });
  }

  async create(assignment: Omit<RoleAssignment, 'id' | 'createdOn' | 'updatedOn'>): Promise<RoleAssignment> {
    if (!GUID.test(assignment.name)) {
      throw new IdentityError('InvalidRoleAssignmentId', `The role assignment ID '${assignment.name}' is not valid. The role assignment ID must be a GUID.`);
    }
    const role = typeof assignment.roleDefinitionId === 'string' ? findRole(assignment.roleDefinitionId) : undefined;
    if (!role || !/^[0-9a-f-]{36}$/i.test(assignment.roleDefinitionId.split('/').pop() ?? '')) {
      throw new IdentityError('RoleDefinitionDoesNotExist', `The specified role definition with ID '${String(assignment.roleDefinitionId).split('/').pop()}' does not exist.`);
    }
    if (typeof assignment.principalId !== 'string' || !GUID.test(assignment.principalId)) {
      throw new IdentityError('InvalidPrincipalId', `A valid principal ID must be provided for role assignment.`);
    }
    if (!(await this.principals.get(assignment.principalId))) {
      throw new IdentityError('PrincipalNotFound', `Principal ${assignment.principalId.replace(/-/g, '')} does not exist in the directory.`);
    }
    const scope = assignment.scope.replace(/\/{2,}/g, '/').replace(/\/+$/, '') || '/';
    const duplicate = (await this.list({ scope, principalId: assignment.principalId })).find(
      (a) => a.roleDefinitionId.split('/').pop()!.toLowerCase() === role.id && normalizeScope(a.scope) === normalizeScope(scope),
    );
    if (duplicate) throw new IdentityError('RoleAssignmentExists', 'The role assignment already exists.', 409);
    const at = this.now().toISOString();
    const record: RoleAssignment = {
      name: assignment.name.toLowerCase(),
      id: `${scope === '/' ? '' : scope}/providers/Microsoft.Authorization/roleAssignments/${assignment.name.toLowerCase()}`,
      scope,
      roleDefinitionId: roleDefinitionResourceId(this.subscriptionId, role.id),
      principalId: assignment.principalId.toLowerCase(),
      principalType: assignment.principalType || 'ServicePrincipal',
      createdOn: at,
      updatedOn: at,
    };
    if (!(await this.store.insertRoleAssignment(record))) {
      throw new IdentityError('RoleAssignmentExists', 'The role assignment already exists.', 409);
    }
    return record;
  }

  async delete(id: string): Promise<RoleAssignment | undefined> {
    const existing = await this.get(id);
    if (existing) await this.store.deleteRoleAssignment(existing.id);
    return existing;
  }
}

/** Azure RBAC: allowed when some role assigned at the scope or above grants the operation. */
export class RbacAccessControl implements AccessControl {
  constructor(private readonly assignments: RoleAssignments) {}

  async allows(principalId: string, scope: string, operation: string, dataAction = false): Promise<boolean> {
    const assigned = await this.assignments.list({ scope, inherited: true, principalId });
    return assigned.some((a) => {
      const role = findRole(a.roleDefinitionId);
      return role !== undefined && roleGrants(role, operation, dataAction);
    });
  }
}
