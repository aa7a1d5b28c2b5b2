/// <reference lib="dom" />
// The hub's Message routing blade (Routes, Custom endpoints, Enrich messages), as Azure's portal has
// it. Reads and writes the hub resource through ARM; route tests through `routing/routes/$testnew`,
// endpoint health through `routingEndpointsHealth`.
import { h, field, text, area, select, radios, button, confirmDialog, table, uid } from './dom.js';
import { call, describe, ARM_HUB_API } from './api.js';
import { go, attempt, type Route } from './nav.js';
import {
  enc, getHub, putHub, hubPath, needsManagement, authenticationChoice, outboundFor, authChoiceOf, numberInput,
  type HubResource, type EndpointKind, type Endpoint, type RouteProperties, type AuthChoice,
} from './hubResource.js';

export const SOURCES: [string, string][] = [
  ['DeviceMessages', 'Device Telemetry Messages'],
  ['TwinChangeEvents', 'Device Twin Change Events'],
  ['DeviceLifecycleEvents', 'Device Lifecycle Events'],
  ['DeviceConnectionStateEvents', 'Device Connection State Events'],
  ['DeviceJobLifecycleEvents', 'Device Job Lifecycle Events'],
];
const sourceLabel = (s: string) => SOURCES.find(([v]) => v === s)?.[1] ?? s;

export const KINDS: [EndpointKind, string][] = [
  ['eventHubs', 'Event Hubs'],
  ['serviceBusQueues', 'Service Bus queue'],
  ['serviceBusTopics', 'Service Bus topic'],
  ['storageContainers', 'Storage'],
];
const kindLabel = (k: string) => KINDS.find(([v]) => v === k)?.[1] ?? k;
const isKind = (k: string): k is EndpointKind => KINDS.some(([v]) => v === k);

const tabs = (current: string) =>
  h('nav', { class: 'tabs', 'aria-label': 'Message routing' },
    ...[['', 'Routes'], ['endpoints', 'Custom endpoints'], ['enrich', 'Enrich messages']].map(([to, label]) =>
      h('a', { href: `#/hub/routing${to ? `/${to}` : ''}`, 'aria-current': current === to ? 'page' : undefined }, label!)));

const TITLE = 'Message routing';
const authLabel = (e: Endpoint) => ({ keyBased: 'Key-based', systemAssigned: 'System-assigned', userAssigned: 'User-assigned' })[authChoiceOf(e)];
const allEndpoints = (hub: HubResource) => KINDS.flatMap(([k]) => hub.properties.routing.endpoints[k].map((e) => ({ kind: k, e })));

// ---------------------------------------------------------------- Routes

async function routesTab(main: HTMLElement): Promise<void> {
  if (needsManagement(main, TITLE)) return;
  const hub = await getHub();
  const r = hub.properties.routing;
  const err = h('div', { class: 'error', role: 'alert', id: 'routing-error' });
  const status = h('p', { class: 'status', role: 'status' });
  const fallback = h('input', { type: 'checkbox', id: 'fallback', checked: r.fallbackRoute.isEnabled });
  fallback.addEventListener('change', async () => {
    status.textContent = '';
    fallback.disabled = true;
    const ok = await attempt(() => putHub((x) => void (x.properties.routing.fallbackRoute.isEnabled = fallback.checked)), (m) => (err.textContent = m));
    fallback.disabled = false;
    if (ok) status.textContent = `Fallback route ${fallback.checked ? 'enabled' : 'disabled'}.`;
    else fallback.checked = !fallback.checked;
  });
  const rows = r.routes.map((route) => [
    h('a', { href: `#/hub/routing/routes/${enc(route.name)}` }, route.name),
    sourceLabel(route.source),
    h('pre', {}, route.condition ?? 'true'),
    route.endpointNames.join(', '),
    route.isEnabled ? 'true' : 'false',
    button('Delete', async () => {
      if (!(await confirmDialog(`Are you sure you want to delete route '${route.name}'?`))) return;
      const ok = await attempt(() => putHub((x) => void (x.properties.routing.routes = x.properties.routing.routes.filter((y) => y.name !== route.name))), (m) => (err.textContent = m));
      if (ok) await rerender(main, routesTab);
    }, false, { 'aria-label': `Delete route ${route.name}` }),
  ]);
  main.append(h('h1', {}, TITLE), tabs(''),
    h('div', { class: 'toolbar' }, button('Add', () => go('hub/routing/routes/add'), true), button('Refresh', () => rerender(main, routesTab))),
    err,
    rows.length ? table(['Name', 'Data source', 'Routing query', 'Endpoint', 'Enabled', ''], rows) : h('p', {}, 'No routes: device messages go to the built-in endpoint (events) through the fallback route.'),
    h('h2', {}, 'Fallback route'),
    h('p', { class: 'muted' }, 'Messages that match no route go to the built-in endpoint (events) when the fallback route is enabled.'),
    h('div', { class: 'field' }, fallback, h('label', { for: 'fallback' }, ' Enable fallback route')),
    status);
}

async function rerender(main: HTMLElement, page: (main: HTMLElement, p: string[], q: URLSearchParams) => Promise<void>, params: string[] = [], q = new URLSearchParams()): Promise<void> {
  main.replaceChildren();
  await page(main, params, q);
}

/** Key/value rows (the test pane's system and application properties). */
function propertyRows(label: string) {
  const body = h('tbody');
  const add = (k = '', v = '') => {
    const n = body.children.length + 1;
    body.append(h('tr', {}, h('td', {}, text(k, { 'aria-label': `${label} ${n} key` })), h('td', {}, text(v, { 'aria-label': `${label} ${n} value` }))));
  };
  add();
  const el = h('div', {},
    h('table', {}, h('caption', { class: 'muted' }, `${label} properties`), h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Value'))), body),
    button(`Add ${label.toLowerCase()} property`, () => add()));
  const value = () => {
    const out: Record<string, string> = {};
    for (const row of body.querySelectorAll('tr')) {
      const [k, v] = [...row.querySelectorAll('input')].map((i) => i.value);
      if (k) out[k] = v ?? '';
    }
    return out;
  };
  return { el, value };
}

async function routeEdit(main: HTMLElement, [name]: string[]): Promise<void> {
  if (needsManagement(main, TITLE)) return;
  const hub = await getHub();
  const existing = name ? hub.properties.routing.routes.find((r) => r.name === name) : undefined;
  if (name && !existing) {
    main.append(h('h1', {}, 'Route not found'), h('p', {}, `The hub has no route named '${name}'.`));
    return;
  }
  const endpointOptions: [string, string][] = [['events', 'events (built-in)'], ...allEndpoints(hub).map(({ kind, e }): [string, string] => [e.name, `${e.name} (${kindLabel(kind)})`])];
  const routeName = field('Name', text(existing?.name ?? '', existing ? { readonly: true } : {}));
  const endpoint = field('Endpoint', select(endpointOptions, existing?.endpointNames[0] ?? 'events'));
  const source = field('Data source', select(SOURCES, existing?.source ?? 'DeviceMessages'));
  const enabled = radios('Enable route', uid('enabled'), [['true', 'Enable'], ['false', 'Disable']], existing?.isEnabled === false ? 'false' : 'true');
  const query = field('Routing query', area(existing?.condition ?? 'true', { rows: 4 }), 'IoT Hub\'s routing query language, e.g. $body.temperature > 30 AND level = \'critical\'');
  const err = h('div', { class: 'error', role: 'alert', id: 'route-error' });
  const route = (): RouteProperties => ({ name: routeName.input.value.trim(), source: source.input.value, condition: query.input.value, endpointNames: [endpoint.input.value], isEnabled: enabled.value() === 'true' });

  const body = field('Message body', area('', { rows: 4 }));
  const system = propertyRows('System');
  const app = propertyRows('Application');
  const twin = field('Twin', area('', { rows: 4 }), 'Optional: the device twin the query reads ($twin.tags…, $twin.properties.desired…), as JSON: {"tags":{…},"properties":{"desired":{…},"reported":{…}}}');
  const result = h('output', { id: 'route-test-result', 'aria-live': 'polite' });
  const compilation = h('ul', { id: 'route-test-errors', class: 'error' });

  main.append(h('h1', {}, existing ? `Route ${existing.name}` : 'Add a route'), tabs(''),
    routeName.wrap, endpoint.wrap, source.wrap, enabled.el, query.wrap,
    h('div', { class: 'toolbar' },
      button('Save', async () => {
        routeName.setError('');
        const r = route();
        const ok = await attempt(() => putHub((x) => {
          const routes = x.properties.routing.routes;
          const i = routes.findIndex((y) => y.name === (existing?.name ?? r.name));
          if (existing && i >= 0) routes[i] = r;
          else routes.push(r);
        }), (m) => (/condition|IH400104/i.test(m) ? query.setError(m) : (err.textContent = m)));
        if (ok) go('hub/routing');
      }, true),
      button('Cancel', () => go('hub/routing'))),
    err,
    h('section', { 'aria-labelledby': 'test-h' },
      h('h2', { id: 'test-h' }, 'Test'),
      h('p', { class: 'muted' }, 'Tests the routing query above against a sample message (nothing is sent).'),
      body.wrap, system.el, app.el, twin.wrap,
      h('div', { class: 'toolbar' }, button('Test route', async () => {
        result.textContent = '';
        compilation.replaceChildren();
        twin.setError('');
        let t: unknown;
        if (twin.input.value.trim()) {
          try {
            t = JSON.parse(twin.input.value);
          } catch (e) {
            return twin.setError(`The twin is not valid JSON: ${(e as Error).message}`);
          }
        }
        const r = await attempt(
          () => call<{ result: string; details?: { compilationErrors?: { message: string; severity: string; location: { start: { line: number; column: number }; end: { line: number; column: number } } }[] } }>(
            'arm', 'POST', `${hubPath()}/routing/routes/$testnew?api-version=${ARM_HUB_API}`,
            { route: { ...route(), name: route().name || 'test' }, message: { body: body.input.value, systemProperties: system.value(), appProperties: app.value() }, ...(t !== undefined ? { twin: t } : {}) }),
          (m) => (result.textContent = m));
        if (!r) return;
        result.textContent = `Result: ${r.body.result}`;
        for (const c of r.body.details?.compilationErrors ?? []) {
          compilation.append(h('li', {}, `${c.severity}: ${c.message} (line ${c.location.start.line}, column ${c.location.start.column} to line ${c.location.end.line}, column ${c.location.end.column})`));
        }
      })),
      h('h3', {}, 'Result'), result, compilation));
}

// ---------------------------------------------------------------- Custom endpoints

interface Health {
  endpointId: string;
  healthStatus: string;
  lastKnownError?: string;
  lastKnownErrorTime?: string;
}

async function health(): Promise<Map<string, Health>> {
  const r = await call<{ value: Health[]; nextLink?: string }>('arm', 'GET', `${hubPath()}/routingEndpointsHealth?api-version=${ARM_HUB_API}`);
  return new Map(r.body.value.map((x) => [x.endpointId, x]));
}

async function endpointsTab(main: HTMLElement): Promise<void> {
  if (needsManagement(main, TITLE)) return;
  const hub = await getHub();
  const list = h('div', { id: 'endpoints' });
  const err = h('div', { class: 'error', role: 'alert' });
  // Built once; the refresh writes only the health cells (so that focus and the keyboard user's place stay).
  const cells = new Map<string, { health: HTMLTableCellElement; error: HTMLTableCellElement }>();
  list.append(...KINDS.map(([kind, label]) => {
    const items = hub.properties.routing.endpoints[kind];
    return h('section', { 'aria-labelledby': `h-${kind}` },
      h('h2', { id: `h-${kind}` }, label),
      h('div', { class: 'toolbar' }, button(`Add ${label} endpoint`, () => go(`hub/routing/endpoints/add?kind=${kind}`))),
      items.length
        ? h('table', {},
            h('thead', {}, h('tr', {}, ...['Endpoint name', 'Authentication type', 'Health', 'Last known error'].map((x) => h('th', { scope: 'col' }, x)))),
            h('tbody', {}, ...items.map((e) => {
              const c = { health: h('td', {}, 'unknown'), error: h('td', {}) };
              cells.set(e.name, c);
              return h('tr', {}, h('td', {}, h('a', { href: `#/hub/routing/endpoints/${kind}/${enc(e.name)}` }, e.name)), h('td', {}, authLabel(e)), c.health, c.error);
            })))
        : h('p', { class: 'muted' }, `No ${label} endpoints.`));
  }));
  const fill = async () => {
    const states = await health().catch((e) => {
      err.textContent = describe(e);
      return undefined;
    });
    if (!states) return;
    err.textContent = '';
    for (const [name, c] of cells) {
      const s = states.get(name);
      c.health.textContent = s?.healthStatus ?? 'unknown';
      c.error.textContent = s?.lastKnownError ? `${s.lastKnownError}${s.lastKnownErrorTime ? ` (${s.lastKnownErrorTime})` : ''}` : '';
    }
  };
  main.append(h('h1', {}, TITLE), tabs('endpoints'), h('div', { class: 'toolbar' }, button('Refresh', () => rerender(main, endpointsTab))), err, list);
  await fill();
  // Health changes as deliveries go: refreshed while the page is shown.
  const timer = setInterval(() => void fill(), 2000);
  window.addEventListener('hashchange', () => clearInterval(timer), { once: true });
}

/** The fields of an endpoint's connection (authentication, and the connection string or endpoint URI + entity path). */
function connectionFields(hub: HubResource, kind: () => EndpointKind, current: Endpoint) {
  const cs = field('Connection string', h('input', { type: 'password', value: current.connectionString ?? '', autocomplete: 'off' }), 'The entity\'s connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=… or a storage account\'s).');
  // Identity-based: the namespace's (account's) URI and the entity; prefilled from a connection string when there is one.
  const fromCs = /Endpoint=([^;]+)/i.exec(current.connectionString ?? '')?.[1]?.replace(/\/+$/, '');
  const pathFromCs = /EntityPath=([^;]+)/i.exec(current.connectionString ?? '')?.[1];
  const uri = field('Endpoint URI', text(current.endpointUri ?? fromCs ?? ''), 'sb://<namespace>.servicebus.windows.net for Event Hubs and Service Bus; https://<account>.blob.core.windows.net/ for Storage.');
  const entity = field('Entity path', text(current.entityPath ?? pathFromCs ?? ''), 'The event hub, queue or topic.');
  const show = (c: AuthChoice) => {
    cs.wrap.hidden = c !== 'keyBased';
    uri.wrap.hidden = c === 'keyBased';
    entity.wrap.hidden = c === 'keyBased' || kind() === 'storageContainers';
  };
  const auth = authenticationChoice(hub, current, show);
  const el = h('div', {}, auth.el, cs.wrap, uri.wrap, entity.wrap);
  const value = (): Endpoint => {
    const c = auth.choice();
    const o = outboundFor(c, auth.identity());
    if (c === 'keyBased') return { name: current.name, ...o, connectionString: cs.input.value.trim() };
    return { name: current.name, ...o, endpointUri: uri.input.value.trim(), ...(kind() !== 'storageContainers' ? { entityPath: entity.input.value.trim() } : {}) };
  };
  return { el, value, show: () => show(auth.choice()), fields: { cs, uri, entity } };
}

async function endpointAdd(main: HTMLElement, _p: string[], q: URLSearchParams): Promise<void> {
  if (needsManagement(main, TITLE)) return;
  const hub = await getHub();
  const initial = q.get('kind') ?? 'eventHubs';
  const kind = field('Endpoint type', select(KINDS, isKind(initial) ? initial : 'eventHubs'));
  const name = field('Endpoint name', text(''));
  const conn = connectionFields(hub, () => kind.input.value as EndpointKind, { name: '' });
  const container = field('Container name', text(''));
  const encoding = field('Encoding', select([['avro', 'AVRO'], ['json', 'JSON']], 'avro'));
  const format = field('File name format', text('{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}'));
  const batch = field('Batch frequency (seconds)', numberInput(100, 60, 720));
  const chunk = field('Chunk size window (MB)', numberInput(300, 10, 500));
  const storage = h('fieldset', {}, h('legend', {}, 'Storage options'), container.wrap, encoding.wrap, format.wrap, batch.wrap, chunk.wrap);
  const showKind = () => {
    storage.hidden = kind.input.value !== 'storageContainers';
    conn.show();
  };
  kind.input.addEventListener('change', showKind);
  const err = h('div', { class: 'error', role: 'alert', id: 'endpoint-error' });
  main.append(h('h1', {}, 'Add a custom endpoint'), tabs('endpoints'), kind.wrap, name.wrap, conn.el, storage,
    h('div', { class: 'toolbar' },
      button('Create', async () => {
        name.setError('');
        const k = kind.input.value as EndpointKind;
        const e: Endpoint = { ...conn.value(), name: name.input.value.trim() };
        if (!e.name) return name.setError('Enter an endpoint name.');
        if (k === 'storageContainers') {
          Object.assign(e, { containerName: container.input.value.trim(), encoding: encoding.input.value, fileNameFormat: format.input.value, batchFrequencyInSeconds: Number(batch.input.value), maxChunkSizeInBytes: Number(chunk.input.value) * 1024 * 1024 });
        }
        const ok = await attempt(() => putHub((x) => void x.properties.routing.endpoints[k].push(e)), (m) => (err.textContent = m));
        if (ok) go('hub/routing/endpoints');
      }, true),
      button('Cancel', () => go('hub/routing/endpoints'))),
    err);
  showKind();
}

async function endpointDetail(main: HTMLElement, [kind, name]: string[]): Promise<void> {
  if (needsManagement(main, TITLE)) return;
  const hub = await getHub();
  const k = isKind(kind!) ? kind : undefined;
  const e = k ? hub.properties.routing.endpoints[k].find((x) => x.name === name) : undefined;
  if (!k || !e) {
    main.append(h('h1', {}, 'Endpoint not found'), h('p', {}, `The hub has no ${kindLabel(kind!)} endpoint named '${name}'.`));
    return;
  }
  const s = (await health().catch(() => new Map<string, Health>())).get(e.name);
  const err = h('div', { class: 'error', role: 'alert', id: 'endpoint-error' });
  const status = h('p', { class: 'status', role: 'status' });
  const conn = connectionFields(hub, () => k, e);
  const dl = h('dl', { class: 'props' });
  const prop = (label: string, v: string | undefined) => v !== undefined && v !== '' && dl.append(h('dt', {}, label), h('dd', {}, v));
  prop('Endpoint type', kindLabel(k));
  prop('Authentication type', authLabel(e));
  prop('User-assigned identity', e.identity?.userAssignedIdentity ?? undefined);
  prop('Endpoint URI', e.endpointUri);
  prop('Entity path', e.entityPath);
  prop('Container name', e.containerName);
  prop('Encoding', e.encoding);
  prop('Health', s?.healthStatus ?? 'unknown');
  prop('Last known error', s?.lastKnownError);
  main.append(h('h1', {}, `${e.name} | ${kindLabel(k)} endpoint`), tabs('endpoints'),
    h('div', { class: 'toolbar' },
      button('Delete', async () => {
        if (!(await confirmDialog(`Are you sure you want to delete endpoint '${e.name}'?`))) return;
        const ok = await attempt(() => putHub((x) => void (x.properties.routing.endpoints[k] = x.properties.routing.endpoints[k].filter((y) => y.name !== e.name))), (m) => (err.textContent = m));
        if (ok) go('hub/routing/endpoints');
      }),
      button('Refresh', () => rerender(main, endpointDetail, [k, e.name]))),
    err, dl,
    h('section', { 'aria-labelledby': 'change-auth-h' },
      h('h2', { id: 'change-auth-h' }, 'Change authentication type'),
      conn.el,
      h('div', { class: 'toolbar' }, button('Save', async () => {
        status.textContent = '';
        const next = conn.value();
        const ok = await attempt(() => putHub((x) => {
          const list = x.properties.routing.endpoints[k];
          const i = list.findIndex((y) => y.name === e.name);
          if (i < 0) return;
          const { connectionString: _c, endpointUri: _u, entityPath: _p, identity: _i, authenticationType: _a, ...rest } = list[i]!;
          list[i] = { ...rest, ...next, name: e.name };
        }), (m) => (err.textContent = m));
        if (ok) {
          await rerender(main, endpointDetail, [k, e.name]);
          main.querySelector('[role=status]')!.textContent = 'Authentication type saved.';
        }
      }, true))),
    status);
}

// ---------------------------------------------------------------- Enrich messages

async function enrichTab(main: HTMLElement): Promise<void> {
  if (needsManagement(main, TITLE)) return;
  const hub = await getHub();
  const err = h('div', { class: 'error', role: 'alert', id: 'enrich-error' });
  const enrichments = hub.properties.routing.enrichments;
  const key = field('Key', text(''));
  const value = field('Value', text(''), 'A constant, or $twin.tags.x, $twin.properties.desired.x, $iothubname.');
  const names = ['events', ...allEndpoints(hub).map(({ e }) => e.name)];
  const boxes = h('fieldset', {}, h('legend', {}, 'Endpoints'), ...names.flatMap((n) => {
    const id = uid('enrich-ep');
    return [h('input', { type: 'checkbox', id, value: n }), h('label', { for: id }, ` ${n} `)];
  }));
  main.append(h('h1', {}, TITLE), tabs('enrich'), err,
    enrichments.length
      ? table(['Key', 'Value', 'Endpoints', ''], enrichments.map((x) => [x.key, x.value, x.endpointNames.join(', '),
          button('Remove', async () => {
            const ok = await attempt(() => putHub((y) => void (y.properties.routing.enrichments = y.properties.routing.enrichments.filter((z) => z.key !== x.key))), (m) => (err.textContent = m));
            if (ok) await rerender(main, enrichTab);
          }, false, { 'aria-label': `Remove enrichment ${x.key}` })]))
      : h('p', { class: 'muted' }, 'No message enrichments.'),
    h('h2', {}, 'Add an enrichment'), key.wrap, value.wrap, boxes,
    h('div', { class: 'toolbar' }, button('Add', async () => {
      const endpointNames = [...boxes.querySelectorAll<HTMLInputElement>('input:checked')].map((b) => b.value);
      const ok = await attempt(() => putHub((y) => void y.properties.routing.enrichments.push({ key: key.input.value, value: value.input.value, endpointNames })), (m) => (err.textContent = m));
      if (ok) await rerender(main, enrichTab);
    }, true)));
}

export const routingRoutes: Route[] = [
  { pattern: /^hub\/routing$/, page: routesTab, needs: 'hub' },
  { pattern: /^hub\/routing\/routes\/add$/, page: (m) => routeEdit(m, []), needs: 'hub' },
  { pattern: /^hub\/routing\/routes\/([^/]+)$/, page: routeEdit, needs: 'hub' },
  { pattern: /^hub\/routing\/endpoints$/, page: endpointsTab, needs: 'hub' },
  { pattern: /^hub\/routing\/endpoints\/add$/, page: endpointAdd, needs: 'hub' },
  { pattern: /^hub\/routing\/endpoints\/([^/]+)\/([^/]+)$/, page: endpointDetail, needs: 'hub' },
  { pattern: /^hub\/routing\/enrich$/, page: enrichTab, needs: 'hub' },
];
