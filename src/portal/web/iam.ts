/// <reference lib="dom" />
// Access control (IAM) of any resource id or of the resource group: role assignments at the scope
// and inherited from above, Add role assignment (Role, Members, Review + assign), Remove. ARM's
// roleAssignments and roleDefinitions APIs; principal names from the resources that own them.
import { h, button, confirmDialog, table, field, select, radios } from './dom.js';
import { session, settings } from './api.js';
import { go, attempt, type Route } from './nav.js';
import { API, arm, group, hubId, iamLink, listIdentities, nameOf, subscription } from './arm.js';

interface Assignment {
  id: string;
  name: string;
  properties: { roleDefinitionId: string; principalId: string; principalType: string; scope: string };
}
interface RoleDefinition {
  id: string;
  name: string;
  properties: { roleName: string; description: string };
}
interface Principal {
  name: string;
  type: string;
}

const AUTH = 'providers/Microsoft.Authorization';
const roles = async () => (await arm<{ value: RoleDefinition[] }>('GET', `${subscription()}/${AUTH}/roleDefinitions`, API.authorization)).body.value;

/** Names of the principals this portal can see: user-assigned identities, the hub's system identity, the signed-in administrator. */
async function principals(): Promise<Map<string, Principal>> {
  const map = new Map<string, Principal>();
  const [uais, hub] = await Promise.all([listIdentities().catch(() => []), arm<{ identity?: { principalId?: string } }>('GET', hubId(), API.hub).then((r) => r.body, () => undefined)]);
  for (const i of uais) map.set(i.properties.principalId.toLowerCase(), { name: i.name, type: 'User-assigned managed identity' });
  if (hub?.identity?.principalId) map.set(hub.identity.principalId.toLowerCase(), { name: settings.hubName, type: 'System-assigned managed identity' });
  try {
    const oid = (JSON.parse(atob(session!.management!.token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { oid?: string }).oid;
    if (oid) map.set(oid.toLowerCase(), { name: 'administrator (you)', type: 'App' });
  } catch {
    // Not a JWT: the administrator is shown by id.
  }
  return map;
}

/** "This resource" or where an inherited assignment comes from. */
function scopeLabel(assignmentScope: string, scope: string): string {
  const a = assignmentScope.toLowerCase().replace(/\/+$/, '');
  if (a === scope.toLowerCase().replace(/\/+$/, '')) return 'This resource';
  const parts = a.split('/').filter(Boolean);
  const what = parts.length <= 2 ? 'Subscription' : parts.length <= 4 ? 'Resource group' : `${nameOf(assignmentScope)}`;
  return `${what} (Inherited)`;
}

const isWithin = (scope: string, outer: string) => {
  const s = scope.toLowerCase().replace(/\/+$/, '');
  const o = outer.toLowerCase().replace(/\/+$/, '');
  return s === o || s.startsWith(`${o}/`);
};

const scopeOf = (q: URLSearchParams) => q.get('scope') ?? group();
const titleOf = (scope: string) => (scope.toLowerCase() === group().toLowerCase() ? settings.resourceGroup : nameOf(scope));

async function iam(main: HTMLElement, _p: string[], q: URLSearchParams): Promise<void> {
  const scope = scopeOf(q);
  const err = h('div', { class: 'error', role: 'alert', id: 'iam-error' });
  const [list, defs, names] = await Promise.all([
    arm<{ value: Assignment[] }>('GET', `${scope}/${AUTH}/roleAssignments`, API.authorization).then((r) => r.body.value),
    roles(),
    principals(),
  ]);
  const roleName = new Map(defs.map((d) => [d.name.toLowerCase(), d.properties.roleName]));
  // At this scope and inherited from above (as Azure's Role assignments tab lists them).
  const shown = list.filter((a) => isWithin(scope, a.properties.scope));
  main.append(h('h1', {}, `${titleOf(scope)} | Access control (IAM)`),
    h('p', { class: 'muted' }, 'Scope: ', h('code', {}, scope)),
    h('div', { class: 'toolbar' }, button('Add role assignment', () => go(`iam/add?scope=${encodeURIComponent(scope)}`), true), button('Refresh', () => go(`${iamLink(scope)}&r=${Date.now()}`))),
    err,
    h('h2', {}, 'Role assignments'),
    shown.length
      ? table(['Role', 'Name', 'Type', 'Scope', ''], shown.map((a) => {
        const p = names.get(a.properties.principalId.toLowerCase());
        const inherited = scopeLabel(a.properties.scope, scope) !== 'This resource';
        const role = roleName.get(nameOf(a.properties.roleDefinitionId).toLowerCase()) ?? nameOf(a.properties.roleDefinitionId);
        const who = p?.name ?? a.properties.principalId;
        return [role, h('span', {}, who, p ? null : h('span', { class: 'muted' }, ' (Identity not found)')), p?.type ?? a.properties.principalType, scopeLabel(a.properties.scope, scope),
          inherited
            ? h('span', { class: 'muted' }, 'Remove at its scope')
            : button('Remove', async () => {
              if (!(await confirmDialog(`Remove the role assignment '${role}' of '${who}'?`))) return;
              const r = await attempt(() => arm('DELETE', a.id, API.authorization), (m) => (err.textContent = m));
              if (r) go(`${iamLink(scope)}&r=${Date.now()}`);
            }, false, { 'aria-label': `Remove ${role} of ${who}` })];
      }), 'Role assignments at this scope and inherited')
      : h('p', {}, 'No role assignments at this scope.'));
}

async function addAssignment(main: HTMLElement, _p: string[], q: URLSearchParams): Promise<void> {
  const scope = scopeOf(q);
  const [defs, uais, hub] = await Promise.all([roles(), listIdentities(), arm<{ identity?: { principalId?: string } }>('GET', hubId(), API.hub).then((r) => r.body)]);
  const sorted = [...defs].sort((a, b) => a.properties.roleName.localeCompare(b.properties.roleName));
  const role = field('Role', select(sorted.map((d) => [d.id, d.properties.roleName])), 'Job function roles and privileged administrator roles (Owner, Contributor, …).');
  const desc = h('p', { class: 'muted', id: 'role-description' });
  const showDesc = () => (desc.textContent = sorted.find((d) => d.id === role.input.value)?.properties.description ?? '');
  role.input.addEventListener('change', showDesc);
  showDesc();
  const member = field('Members', select(uais.map((i) => [i.properties.principalId, i.name])));
  const system = hub.identity?.principalId;
  const systemNote = h('p', {}, system ? `IoT hub ${settings.hubName} (system assigned managed identity)` : `The IoT hub ${settings.hubName} has no system assigned managed identity: turn it on under Identity.`);
  systemNote.hidden = true;
  const access = radios('Assign access to', 'assign-access', [['uai', 'User-assigned managed identity'], ['system', 'System-assigned managed identity (IoT hub)']], 'uai', (v) => {
    member.wrap.hidden = v !== 'uai';
    systemNote.hidden = v !== 'system';
  });
  const err = h('div', { class: 'error', role: 'alert', id: 'assign-error' });
  const review = h('section', { 'aria-labelledby': 'review-h', hidden: true, tabindex: '-1' });
  const form = h('div', {});
  const chosen = () => {
    const principalId = access.value() === 'system' ? system : member.input.value;
    const name = access.value() === 'system' ? settings.hubName : member.input.selectedOptions[0]?.textContent ?? '';
    return { principalId, name };
  };
  const toReview = button('Review + assign', () => {
    err.textContent = '';
    const c = chosen();
    if (!c.principalId) return void (err.textContent = 'Select members: an identity to assign the role to.');
    const roleText = role.input.selectedOptions[0]?.textContent ?? '';
    review.replaceChildren(h('h2', { id: 'review-h' }, 'Review + assign'),
      h('dl', { class: 'props' }, h('dt', {}, 'Role'), h('dd', {}, roleText), h('dt', {}, 'Scope'), h('dd', {}, scope), h('dt', {}, 'Members'), h('dd', {}, `${c.name} (${c.principalId})`)),
      h('div', { class: 'toolbar' },
        button('Review + assign', async () => {
          const r = await attempt(() => arm('PUT', `${scope}/${AUTH}/roleAssignments/${crypto.randomUUID()}`, API.authorization, { properties: { roleDefinitionId: role.input.value, principalId: c.principalId, principalType: 'ServicePrincipal' } }), (m) => (err.textContent = m));
          if (r) go(iamLink(scope));
        }, true),
        button('Previous', () => {
          review.hidden = true;
          form.hidden = false;
          role.input.focus();
        })));
    form.hidden = true;
    review.hidden = false;
    review.focus();
  }, true);
  form.append(h('h2', {}, 'Role'), role.wrap, desc, h('h2', {}, 'Members'), access.el, member.wrap, systemNote, h('div', { class: 'toolbar' }, toReview, h('a', { class: 'button', href: `#/${iamLink(scope)}` }, 'Cancel')));
  main.append(h('h1', {}, 'Add role assignment'), h('p', { class: 'muted' }, `${titleOf(scope)}: `, h('code', {}, scope)), err, form, review);
}

export const iamRoutes: Route[] = [
  { pattern: /^iam$/, page: iam },
  { pattern: /^iam\/add$/, page: addAssignment },
];
