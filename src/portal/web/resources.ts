/// <reference lib="dom" />
// Resources through ARM: Managed Identities (user-assigned identities), Event Hubs namespaces and
// Service Bus namespaces with their event hubs / queues / topics and shared access policies.
import { h, field, text, button, confirmDialog, table, secret, select } from './dom.js';
import { go, attempt, type Route } from './nav.js';
import { API, arm, enc, group, groupLocation, identitiesPath, iamLink, listIdentities, tabs, type Identity } from './arm.js';

// ---- Managed Identities -------------------------------------------------------------------------

async function identities(main: HTMLElement): Promise<void> {
  const err = h('div', { class: 'error', role: 'alert' });
  const list = await listIdentities();
  main.append(h('h1', {}, 'Managed Identities'),
    h('div', { class: 'toolbar' }, button('Create', () => go('resources/identities/create'), true), button('Refresh', () => go(`resources/identities?r=${Date.now()}`))),
    err,
    list.length
      ? table(['Name', 'Resource group', 'Location', 'Client ID', 'Object (principal) ID', ''], list.map((i) => [
        h('a', { href: `#/resources/identities/${enc(i.name)}` }, i.name), i.id.split('/')[4] ?? '', i.location, i.properties.clientId, i.properties.principalId,
        button('Delete', async () => {
          if (!(await confirmDialog(`Are you sure you want to delete the managed identity '${i.name}'?`))) return;
          const r = await attempt(() => arm('DELETE', i.id, API.msi), (m) => (err.textContent = m));
          if (r) go(`resources/identities?r=${Date.now()}`);
        }, false, { 'aria-label': `Delete ${i.name}` })]), 'User assigned managed identities')
      : h('p', {}, 'No managed identities to display.'));
}

function createIdentity(main: HTMLElement): void {
  const name = field('Name', text('', { required: true }));
  main.append(h('h1', {}, 'Create User Assigned Managed Identity'), name.wrap,
    h('div', { class: 'toolbar' }, button('Review + create', async () => {
      const r = await attempt(async () => arm('PUT', `${identitiesPath()}/${enc(name.input.value)}`, API.msi, { location: await groupLocation() }), name.setError);
      if (r) go(`resources/identities/${enc(name.input.value)}`);
    }, true)));
}

async function identityPage(main: HTMLElement, [name]: string[]): Promise<void> {
  const i = (await arm<Identity>('GET', `${identitiesPath()}/${enc(name!)}`, API.msi)).body;
  const err = h('div', { class: 'error', role: 'alert' });
  main.append(h('h1', {}, `${i.name} | Overview`), tabs('Managed identity', `resources/identities/${enc(i.name)}`, [[`resources/identities/${enc(i.name)}`, 'Overview'], [iamLink(i.id), 'Access control (IAM)']]),
    h('div', { class: 'toolbar' }, button('Delete', async () => {
      if (!(await confirmDialog(`Are you sure you want to delete the managed identity '${i.name}'?`))) return;
      const r = await attempt(() => arm('DELETE', i.id, API.msi), (m) => (err.textContent = m));
      if (r) go('resources/identities');
    })),
    err,
    h('dl', { class: 'props' }, h('dt', {}, 'Resource group'), h('dd', {}, i.id.split('/')[4] ?? ''), h('dt', {}, 'Location'), h('dd', {}, i.location),
      h('dt', {}, 'Client ID'), h('dd', { id: 'identity-client-id' }, i.properties.clientId), h('dt', {}, 'Object (principal) ID'), h('dd', { id: 'identity-principal-id' }, i.properties.principalId),
      h('dt', {}, 'Tenant ID'), h('dd', {}, i.properties.tenantId)));
}

// ---- Event Hubs and Service Bus namespaces -----------------------------------------------------

interface Kind {
  key: 'eventhubs' | 'servicebus';
  title: string;
  provider: string;
  api: string;
  /** The entities of a namespace: path segment and Azure's names. */
  entities: { path: string; plural: string; singular: string; extra?: () => { wrap: HTMLElement; props: () => Record<string, unknown> } }[];
}

const KINDS: Record<string, Kind> = {
  eventhubs: {
    key: 'eventhubs', title: 'Event Hubs', provider: 'Microsoft.EventHub', api: API.eventHub,
    entities: [{
      path: 'eventhubs', plural: 'Event Hubs', singular: 'Event Hub', extra: () => {
        const p = field('Partition count', h('input', { type: 'number', value: '2', min: '1', max: '32' }));
        return { wrap: p.wrap, props: () => ({ partitionCount: Number(p.input.value), messageRetentionInDays: 1 }) };
      },
    }],
  },
  servicebus: {
    key: 'servicebus', title: 'Service Bus', provider: 'Microsoft.ServiceBus', api: API.serviceBus,
    entities: [{ path: 'queues', plural: 'Queues', singular: 'Queue' }, { path: 'topics', plural: 'Topics', singular: 'Topic' }],
  },
};

interface Arm {
  id: string;
  name: string;
  location?: string;
  sku?: { name: string };
  properties?: Record<string, unknown>;
}

const nsPath = (k: Kind, ns?: string) => `${group()}/providers/${k.provider}/namespaces${ns !== undefined ? `/${enc(ns)}` : ''}`;

function nsTabs(k: Kind, ns: string, id: string, current: string): HTMLElement {
  const base = `resources/${k.key}/${enc(ns)}`;
  return tabs(`${k.title} namespace`, current, [
    [base, 'Overview'],
    ...k.entities.map((e) => [`${base}/${e.path}`, e.plural] as [string, string]),
    [`${base}/policies`, 'Shared access policies'],
    [iamLink(id), 'Access control (IAM)'],
  ]);
}

async function namespaces(k: Kind, main: HTMLElement): Promise<void> {
  const err = h('div', { class: 'error', role: 'alert' });
  const list = (await arm<{ value: Arm[] }>('GET', nsPath(k), k.api)).body.value;
  main.append(h('h1', {}, `${k.title} namespaces`),
    h('div', { class: 'toolbar' }, button('Create', () => go(`resources/${k.key}/create`), true), button('Refresh', () => go(`resources/${k.key}?r=${Date.now()}`))),
    err,
    list.length
      ? table(['Name', 'Resource group', 'Location', 'Pricing tier', ''], list.map((n) => [
        h('a', { href: `#/resources/${k.key}/${enc(n.name)}` }, n.name), n.id.split('/')[4] ?? '', n.location ?? '', n.sku?.name ?? '',
        button('Delete', async () => {
          if (!(await confirmDialog(`Are you sure you want to delete the namespace '${n.name}'?`))) return;
          const r = await attempt(() => arm('DELETE', n.id, k.api), (m) => (err.textContent = m));
          if (r) go(`resources/${k.key}?r=${Date.now()}`);
        }, false, { 'aria-label': `Delete ${n.name}` })]), `${k.title} namespaces`)
      : h('p', {}, `No ${k.title} namespaces to display.`));
}

function createNamespace(k: Kind, main: HTMLElement): void {
  const name = field('Namespace name', text('', { required: true }));
  const tier = field('Pricing tier', select([['Standard', 'Standard'], ['Basic', 'Basic'], ['Premium', 'Premium']], 'Standard'));
  main.append(h('h1', {}, `Create ${k.title} namespace`), name.wrap, tier.wrap,
    h('div', { class: 'toolbar' }, button('Review + create', async () => {
      const r = await attempt(async () => arm('PUT', nsPath(k, name.input.value), k.api, { location: await groupLocation(), sku: { name: tier.input.value, tier: tier.input.value } }), name.setError);
      if (r) go(`resources/${k.key}/${enc(name.input.value)}`);
    }, true)));
}

async function namespacePage(k: Kind, main: HTMLElement, [ns]: string[]): Promise<void> {
  const n = (await arm<Arm>('GET', nsPath(k, ns), k.api)).body;
  const err = h('div', { class: 'error', role: 'alert' });
  main.append(h('h1', {}, `${n.name} | Overview`), nsTabs(k, n.name, n.id, `resources/${k.key}/${enc(n.name)}`),
    h('div', { class: 'toolbar' }, button('Delete', async () => {
      if (!(await confirmDialog(`Are you sure you want to delete the namespace '${n.name}'?`))) return;
      const r = await attempt(() => arm('DELETE', n.id, k.api), (m) => (err.textContent = m));
      if (r) go(`resources/${k.key}`);
    })),
    err,
    h('dl', { class: 'props' }, h('dt', {}, 'Resource group'), h('dd', {}, n.id.split('/')[4] ?? ''), h('dt', {}, 'Location'), h('dd', {}, n.location ?? ''),
      h('dt', {}, 'Pricing tier'), h('dd', {}, n.sku?.name ?? ''), h('dt', {}, 'Host name'), h('dd', {}, String(n.properties?.serviceBusEndpoint ?? '')), h('dt', {}, 'Status'), h('dd', {}, String(n.properties?.status ?? ''))));
}

async function entities(k: Kind, main: HTMLElement, [ns, path]: string[]): Promise<void> {
  const e = k.entities.find((x) => x.path === path)!;
  const n = (await arm<Arm>('GET', nsPath(k, ns), k.api)).body;
  const list = (await arm<{ value: Arm[] }>('GET', `${n.id}/${e.path}`, k.api)).body.value;
  const name = field(`${e.singular} name`, text(''));
  const extra = e.extra?.();
  const err = h('div', { class: 'error', role: 'alert' });
  const reload = () => go(`resources/${k.key}/${enc(n.name)}/${e.path}?r=${Date.now()}`);
  main.append(h('h1', {}, `${n.name} | ${e.plural}`), nsTabs(k, n.name, n.id, `resources/${k.key}/${enc(n.name)}/${e.path}`), err,
    list.length
      ? table(['Name', 'Status', ...(e.path === 'eventhubs' ? ['Partition count'] : []), ''], list.map((x) => [
        h('a', { href: `#/resources/${k.key}/${enc(n.name)}/${e.path}/${enc(x.name)}` }, x.name), String(x.properties?.status ?? ''),
        ...(e.path === 'eventhubs' ? [String(x.properties?.partitionCount ?? '')] : []),
        button('Delete', async () => {
          if (!(await confirmDialog(`Are you sure you want to delete the ${e.singular.toLowerCase()} '${x.name}'?`))) return;
          const r = await attempt(() => arm('DELETE', x.id, k.api), (m) => (err.textContent = m));
          if (r) reload();
        }, false, { 'aria-label': `Delete ${x.name}` })]), e.plural)
      : h('p', {}, `No ${e.plural.toLowerCase()} to display.`),
    h('form', { 'aria-labelledby': 'entity-create', onsubmit: (ev: Event) => ev.preventDefault() },
      h('h2', { id: 'entity-create' }, `Create ${e.singular}`), name.wrap, extra?.wrap,
      button('Create', async () => {
        const r = await attempt(() => arm('PUT', `${n.id}/${e.path}/${enc(name.input.value)}`, k.api, { properties: extra?.props() ?? {} }), name.setError);
        if (r) reload();
      }, true)));
}

async function entityPage(k: Kind, main: HTMLElement, [ns, path, entity]: string[]): Promise<void> {
  const e = k.entities.find((x) => x.path === path)!;
  const x = (await arm<Arm>('GET', `${nsPath(k, ns)}/${e.path}/${enc(entity!)}`, k.api)).body;
  const base = `resources/${k.key}/${enc(ns!)}/${e.path}/${enc(x.name)}`;
  main.append(h('h1', {}, `${x.name} | ${e.singular}`),
    tabs(e.singular, base, [[base, 'Overview'], [`${base}/policies`, 'Shared access policies'], [iamLink(x.id), 'Access control (IAM)']]),
    h('p', {}, h('a', { href: `#/resources/${k.key}/${enc(ns!)}/${e.path}` }, `${ns} | ${e.plural}`)),
    h('dl', { class: 'props' }, ...Object.entries(x.properties ?? {}).filter(([, v]) => typeof v !== 'object').flatMap(([key, v]) => [h('dt', {}, key), h('dd', {}, String(v))])));
}

/** Shared access policies of a namespace (or of an entity): list, add, delete, keys shown on demand (listKeys). */
async function policies(k: Kind, main: HTMLElement, [ns, path, entity]: string[]): Promise<void> {
  const owner = `${nsPath(k, ns)}${path ? `/${path}/${enc(entity!)}` : ''}`;
  const title = path ? entity! : ns!;
  const list = (await arm<{ value: { id: string; name: string; properties: { rights: string[] } }[] }>('GET', `${owner}/authorizationRules`, k.api)).body.value;
  const err = h('div', { class: 'error', role: 'alert' });
  const keys = h('div', { 'aria-live': 'polite' });
  const here = path ? `resources/${k.key}/${enc(ns!)}/${path}/${enc(entity!)}/policies` : `resources/${k.key}/${enc(ns!)}/policies`;
  const reload = () => go(`${here}?r=${Date.now()}`);
  const name = field('Policy name', text(''));
  const rights = ['Manage', 'Send', 'Listen'].map((r) => h('input', { type: 'checkbox', id: `right-${r}`, value: r }));
  main.append(h('h1', {}, `${title} | Shared access policies`),
    path ? tabs('Entity', here, [[`resources/${k.key}/${enc(ns!)}/${path}/${enc(entity!)}`, 'Overview'], [here, 'Shared access policies'], [iamLink(owner), 'Access control (IAM)']])
      : nsTabs(k, ns!, owner, here),
    err,
    list.length
      ? table(['Policy', 'Claims', ''], list.map((p) => [p.name, p.properties.rights.join(', '), h('div', { class: 'toolbar' },
        button('Show keys', async () => {
          const r = await attempt(() => arm<{ primaryKey: string; secondaryKey: string; primaryConnectionString: string; secondaryConnectionString: string }>('POST', `${p.id}/listKeys`, k.api), (m) => (err.textContent = m));
          if (r) keys.replaceChildren(h('h2', {}, `SAS Policy: ${p.name}`), secret('Primary key', r.body.primaryKey), secret('Secondary key', r.body.secondaryKey), secret('Primary connection string', r.body.primaryConnectionString), secret('Secondary connection string', r.body.secondaryConnectionString));
        }, false, { 'aria-label': `Show keys of ${p.name}` }),
        button('Delete', async () => {
          if (!(await confirmDialog(`Are you sure you want to delete the policy '${p.name}'?`))) return;
          const r = await attempt(() => arm('DELETE', p.id, k.api), (m) => (err.textContent = m));
          if (r) reload();
        }, false, { 'aria-label': `Delete ${p.name}` }))]), 'Shared access policies')
      : h('p', {}, 'No shared access policies.'),
    keys,
    h('form', { 'aria-labelledby': 'policy-add', onsubmit: (ev: Event) => ev.preventDefault() },
      h('h2', { id: 'policy-add' }, 'Add SAS Policy'), name.wrap,
      h('fieldset', {}, h('legend', {}, 'Claims'), ...rights.flatMap((r) => [r, h('label', { for: r.id }, ` ${r.value} `)])),
      button('Create', async () => {
        const chosen = rights.filter((r) => r.checked).map((r) => r.value);
        const r = await attempt(() => arm('PUT', `${owner}/authorizationRules/${enc(name.input.value)}`, k.api, { properties: { rights: chosen.includes('Manage') ? ['Manage', 'Send', 'Listen'] : chosen } }), name.setError);
        if (r) reload();
      }, true)));
}

const nsRoutes = (k: Kind): Route[] => [
  { pattern: new RegExp(`^resources/${k.key}$`), page: (m) => namespaces(k, m) },
  { pattern: new RegExp(`^resources/${k.key}/create$`), page: (m) => createNamespace(k, m) },
  { pattern: new RegExp(`^resources/${k.key}/([^/]+)$`), page: (m, p) => namespacePage(k, m, p) },
  { pattern: new RegExp(`^resources/${k.key}/([^/]+)/policies$`), page: (m, p) => policies(k, m, p) },
  { pattern: new RegExp(`^resources/${k.key}/([^/]+)/(${k.entities.map((e) => e.path).join('|')})$`), page: (m, p) => entities(k, m, p) },
  { pattern: new RegExp(`^resources/${k.key}/([^/]+)/(${k.entities.map((e) => e.path).join('|')})/([^/]+)$`), page: (m, p) => entityPage(k, m, p) },
  { pattern: new RegExp(`^resources/${k.key}/([^/]+)/(${k.entities.map((e) => e.path).join('|')})/([^/]+)/policies$`), page: (m, p) => policies(k, m, p) },
];

export const resourceRoutes: Route[] = [
  { pattern: /^resources\/identities$/, page: identities },
  { pattern: /^resources\/identities\/create$/, page: createIdentity },
  { pattern: /^resources\/identities\/([^/]+)$/, page: identityPage },
  ...nsRoutes(KINDS.eventhubs!),
  ...nsRoutes(KINDS.servicebus!),
];
