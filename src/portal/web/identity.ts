/// <reference lib="dom" />
// The hub's Identity blade: System assigned (Status, Save) and User assigned (list, Add, Remove),
// all through ARM's PUT of the IoT hub resource (read-modify-write with the resource's etag).
import { h, button, confirmDialog, radios, table, field, select } from './dom.js';
import { settings } from './api.js';
import { go, attempt, type Route } from './nav.js';
import { API, arm, hubId, iamLink, listIdentities, nameOf, tabs } from './arm.js';

interface HubResource {
  etag: string;
  identity?: { type: string; principalId?: string; tenantId?: string; userAssignedIdentities?: Record<string, { clientId?: string; principalId?: string }> };
  [k: string]: unknown;
}

const getHub = async () => (await arm<HubResource>('GET', hubId(), API.hub)).body;

/** Fresh read, change the identity, PUT with If-Match (a concurrent change is refused, not overwritten). */
async function putIdentity(change: (system: boolean, users: string[]) => { system: boolean; users: string[] }): Promise<HubResource> {
  const hub = await getHub();
  const type = hub.identity?.type ?? 'None';
  const now = change(/SystemAssigned/i.test(type), Object.keys(hub.identity?.userAssignedIdentities ?? {}));
  const newType = now.system && now.users.length ? 'SystemAssigned, UserAssigned' : now.system ? 'SystemAssigned' : now.users.length ? 'UserAssigned' : 'None';
  const body = { ...hub, identity: { type: newType, ...(now.users.length ? { userAssignedIdentities: Object.fromEntries(now.users.map((u) => [u, {}])) } : {}) } };
  return (await arm<HubResource>('PUT', hubId(), API.hub, body, { 'if-match': hub.etag })).body;
}

const identityTabs = (current: string) => tabs('Identity', current, [['hub/identity', 'System assigned'], ['hub/identity/user', 'User assigned']]);

async function systemAssigned(main: HTMLElement): Promise<void> {
  const hub = await getHub();
  const on = /SystemAssigned/i.test(hub.identity?.type ?? '');
  const status = radios('Status', 'identity-status', [['off', 'Off'], ['on', 'On']], on ? 'on' : 'off');
  const err = h('div', { class: 'error', role: 'alert', id: 'identity-error' });
  const saved = h('p', { class: 'status', role: 'status' });
  main.append(h('h1', {}, `${settings.hubName} | Identity`), identityTabs('hub/identity'),
    h('p', {}, 'A system assigned managed identity is tied to this IoT hub: it is deleted when the identity is turned off. Grant it access with Azure role assignments.'),
    h('div', { class: 'toolbar' },
      button('Save', async () => {
        const want = status.value() === 'on';
        if (want === on) return;
        if (!want && !(await confirmDialog(`Disable system assigned managed identity of '${settings.hubName}'? Role assignments of the identity stop working and it is deleted.`))) return;
        const r = await attempt(() => putIdentity((_s, users) => ({ system: want, users })), (m) => (err.textContent = m));
        if (r) go(`hub/identity?saved=${Date.now()}`);
      }, true),
      button('Refresh', () => go(`hub/identity?r=${Date.now()}`))),
    err, saved, status.el,
    on
      ? h('dl', { class: 'props' }, h('dt', {}, 'Object (principal) ID'), h('dd', { id: 'system-principal-id' }, hub.identity?.principalId ?? ''),
        h('dt', {}, 'Permissions'), h('dd', {}, h('a', { href: `#/${iamLink(hubId())}` }, 'Azure role assignments')))
      : '');
  if (new URLSearchParams(location.hash.split('?')[1] ?? '').has('saved')) saved.textContent = 'Saved.';
}

async function userAssigned(main: HTMLElement): Promise<void> {
  const hub = await getHub();
  const attached = hub.identity?.userAssignedIdentities ?? {};
  const err = h('div', { class: 'error', role: 'alert', id: 'identity-error' });
  const reload = () => go(`hub/identity/user?r=${Date.now()}`);
  const panel = h('section', { 'aria-labelledby': 'uai-add', hidden: true });
  const ids = Object.keys(attached);
  main.append(h('h1', {}, `${settings.hubName} | Identity`), identityTabs('hub/identity/user'),
    h('p', {}, 'User assigned managed identities are standalone resources that this IoT hub can use to authenticate.'),
    h('div', { class: 'toolbar' },
      button('Add user assigned managed identity', async () => {
        const choices = (await listIdentities()).filter((i) => !ids.some((x) => x.toLowerCase() === i.id.toLowerCase()));
        const pick = field('User assigned managed identities', select(choices.map((i) => [i.id, i.name])));
        panel.replaceChildren(h('h2', { id: 'uai-add' }, 'Add user assigned managed identity'),
          choices.length ? pick.wrap : h('p', {}, 'No user assigned managed identities left to add: create one under Managed Identities.'),
          h('div', { class: 'toolbar' },
            button('Add', async () => {
              const id = pick.input.value;
              if (!id) return;
              const r = await attempt(() => putIdentity((system, users) => ({ system, users: [...users, id] })), pick.setError);
              if (r) reload();
            }, true, choices.length ? {} : { disabled: true }),
            button('Cancel', () => { panel.hidden = true; })));
        panel.hidden = false;
        (pick.input.isConnected ? pick.input : panel.querySelector('button'))?.focus();
      }, true),
      button('Refresh', reload)),
    err, panel,
    ids.length
      ? table(['Name', 'Resource group', 'Client ID', 'Object (principal) ID', ''], ids.map((id) => [
        h('a', { href: `#/resources/identities/${encodeURIComponent(nameOf(id))}` }, nameOf(id)), id.split('/')[4] ?? '', attached[id]?.clientId ?? '', attached[id]?.principalId ?? '',
        button('Remove', async () => {
          if (!(await confirmDialog(`Remove user assigned managed identity '${nameOf(id)}' from '${settings.hubName}'?`))) return;
          const r = await attempt(() => putIdentity((system, users) => ({ system, users: users.filter((u) => u.toLowerCase() !== id.toLowerCase()) })), (m) => (err.textContent = m));
          if (r) reload();
        }, false, { 'aria-label': `Remove ${nameOf(id)}` })]), 'User assigned managed identities of the IoT hub')
      : h('p', {}, 'No user assigned managed identities are added to this resource.'));
}

export const identityRoutes: Route[] = [
  { pattern: /^hub\/identity$/, page: systemAssigned },
  { pattern: /^hub\/identity\/user$/, page: userAssigned },
];
