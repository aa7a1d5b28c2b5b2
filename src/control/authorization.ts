/**
 * `Microsoft.Authorization/roleAssignments` (at any scope, inherited below it) and the built-in
 * `roleDefinitions`, as ARM shapes them, over the identity area's role assignments.
 */
import type { Principals, RoleAssignment, RoleAssignments, RoleDefinition, Tenancy } from '../identity/types.js';
import { ArmError, armErrors } from './errors.js';
import type { RoleDefinitions } from './ports.js';
import { isWithin } from './resourceIds.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const principalTypes: Record<string, string> = { servicePrincipal: 'ServicePrincipal', systemAssigned: 'ServicePrincipal', userAssigned: 'ServicePrincipal' };

export class Authorization {
  constructor(
    private readonly deps: { tenancy: Tenancy; assignments: RoleAssignments; definitions: RoleDefinitions; principals: Principals },
  ) {}

  assignmentToArm(a: RoleAssignment) {
    return {
      id: a.id,
      type: 'Microsoft.Authorization/roleAssignments',
      name: a.name,
      properties: {
        roleDefinitionId: a.roleDefinitionId,
        principalId: a.principalId,
        principalType: a.principalType,
        scope: a.scope,
        condition: null,
        conditionVersion: null,
        createdOn: a.createdOn,
        updatedOn: a.updatedOn,
        createdBy: null,
        updatedBy: null,
        delegatedManagedIdentityResourceId: null,
        description: null,
      },
    };
  }

  definitionToArm(d: RoleDefinition, scope: string) {
    const at = scope.replace(/\/+$/, '');
    return {
      id: `${at}/providers/Microsoft.Authorization/roleDefinitions/${d.id}`,
      type: 'Microsoft.Authorization/roleDefinitions',
      name: d.id,
      properties: {
        roleName: d.roleName,
        type: 'BuiltInRole',
        description: d.description,
        assignableScopes: ['/'],
        permissions: [{ actions: d.actions, notActions: d.notActions, dataActions: d.dataActions, notDataActions: d.notDataActions }],
        createdOn: '2015-02-02T21:55:09.8806423Z',
        updatedOn: '2021-11-11T20:13:47.8628684Z',
        createdBy: null,
        updatedBy: null,
      },
    };
  }

  /** `$filter`: `atScope()`, `principalId eq '{id}'`, `assignedTo('{id}')`; without one, those at, above and below the scope. */
  async listAssignments(scope: string, filter?: string) {
    const all = await this.deps.assignments.list();
    let principal: string | undefined;
    let atScope = false;
    if (filter) {
      const f = filter.trim();
      const m = /^(?:principalId\s+eq\s+'([^']+)'|assignedTo\('([^']+)'\))(?:\s+and\s+atScope\(\))?$/i.exec(f);
      if (/^atScope\(\)$/i.test(f)) atScope = true;
      else if (m) principal = m[1] ?? m[2];
      else throw armErrors.badRequest('InvalidFilterInQueryString', `The filter '${filter}' is not supported: use atScope(), principalId eq '{id}' or assignedTo('{id}').`);
      if (/atScope\(\)/i.test(f)) atScope = true;
    }
    return all
      .filter((a) => isWithin(scope, a.scope) || (!atScope && isWithin(a.scope, scope)))
      .filter((a) => !principal || a.principalId.toLowerCase() === principal.toLowerCase())
      .map((a) => this.assignmentToArm(a));
  }

  async getAssignment(id: string) {
    const a = await this.deps.assignments.get(id);
    if (!a) throw new ArmError(404, 'RoleAssignmentNotFound', `The role assignment '${id.split('/').pop()}' is not found.`);
    return this.assignmentToArm(a);
  }

  async createAssignment(scope: string, name: string, body: unknown) {
    if (!GUID.test(name)) throw armErrors.badRequest('InvalidRoleAssignmentId', `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
    const props = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).properties : undefined;
    if (typeof props !== 'object' || props === null) throw armErrors.invalidContent("The request body needs 'properties' with 'roleDefinitionId' and 'principalId'.");
    const p = props as Record<string, unknown>;
    if (typeof p.roleDefinitionId !== 'string' || typeof p.principalId !== 'string') {
      throw armErrors.invalidContent("'properties.roleDefinitionId' and 'properties.principalId' are required strings.");
    }
    if (p.condition !== undefined && p.condition !== null) throw armErrors.notSupported('properties.condition', p.condition);
    const roleId = p.roleDefinitionId.split('/').pop() ?? '';
    const role = this.deps.definitions.get(roleId);
    if (!role || !/\/providers\/Microsoft\.Authorization\/roleDefinitions\/[^/]+$/i.test(p.roleDefinitionId)) {
      throw armErrors.badRequest('RoleDefinitionDoesNotExist', `The specified role definition with ID '${roleId}' does not exist.`);
    }
    const principal = await this.deps.principals.get(p.principalId);
    if (!principal) {
      throw armErrors.badRequest(
        'PrincipalNotFound',
        `Principal ${p.principalId.replace(/-/g, '')} does not exist in the directory ${this.deps.tenancy.tenantId}. Check that you have the correct principal ID.`,
      );
    }
    const id = `${scope.replace(/\/+$/, '')}/providers/Microsoft.Authorization/roleAssignments/${name}`;
    const existing = await this.deps.assignments.get(id);
    const duplicate = (await this.deps.assignments.list({ scope })).find(
      (a) => a.scope.toLowerCase() === scope.toLowerCase() && a.principalId.toLowerCase() === principal.principalId.toLowerCase() && a.roleDefinitionId.split('/').pop()!.toLowerCase() === role.id,
    );
    if (existing) {
      if (existing.principalId.toLowerCase() === principal.principalId.toLowerCase() && existing.roleDefinitionId.split('/').pop()!.toLowerCase() === role.id) return { created: false, body: this.assignmentToArm(existing) };
      throw armErrors.badRequest('RoleAssignmentUpdateNotPermitted', 'Tenant ID, application ID, principal ID, and scope are not allowed to be updated.');
    }
    if (duplicate) throw armErrors.conflict('RoleAssignmentExists', 'The role assignment already exists.');
    const created = await this.deps.assignments.create({
      name,
      scope,
      roleDefinitionId: `/subscriptions/${this.deps.tenancy.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${role.id}`,
      principalId: principal.principalId,
      principalType: principalTypes[principal.kind] ?? 'ServicePrincipal',
    });
    return { created: true, body: this.assignmentToArm(created) };
  }

  async deleteAssignment(id: string) {
    const a = await this.deps.assignments.delete(id);
    return a ? this.assignmentToArm(a) : undefined;
  }

  listDefinitions(scope: string, filter?: string) {
    let defs = this.deps.definitions.list();
    if (filter) {
      const m = /^roleName\s+eq\s+'([^']*)'$/i.exec(filter.trim());
      if (m) defs = defs.filter((d) => d.roleName.toLowerCase() === m[1]!.toLowerCase());
      else if (/^type\s+eq\s+'BuiltInRole'$/i.test(filter.trim())) defs = defs.slice();
      else if (/^type\s+eq\s+'CustomRole'$/i.test(filter.trim())) defs = [];
      else throw armErrors.badRequest('InvalidFilterInQueryString', `The filter '${filter}' is not supported: use roleName eq '{name}' or type eq 'BuiltInRole'.`);
    }
    return defs.map((d) => this.definitionToArm(d, scope));
  }

  getDefinition(scope: string, id: string) {
    const d = this.deps.definitions.get(id);
    if (!d) throw new ArmError(404, 'RoleDefinitionDoesNotExist', `The role definition '${id}' could not be found.`);
    return this.definitionToArm(d, scope);
  }
}
