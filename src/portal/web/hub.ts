/// <reference lib="dom" />
import { h, field, text, area, radios, button, confirmDialog, table, secret, pretty, append } from './dom.js';
import { call, queryPage, settings, session, newKey, describe, streamTelemetry } from './api.js';
import { go, attempt, type Route } from './nav.js';
import { telemetryChart } from './chart.js';

const enc = encodeURIComponent;
const PAGE_SIZE = 50;

interface Device {
  deviceId: string;
  etag: string;
  status: 'enabled' | 'disabled';
  connectionState?: string;
  authentication: { type: string; symmetricKey?: { primaryKey: string | null; secondaryKey: string | null }; x509Thumbprint?: { primaryThumbprint: string | null; secondaryThumbprint: string | null } };
  capabilities?: { iotEdge: boolean };
  cloudToDeviceMessageCount?: number;
  lastActivityTime?: string;
}

const deviceTabs = (id: string, current: string) =>
  h('nav', { class: 'tabs', 'aria-label': 'Device' },
    ...[['', 'Device details'], ['twin', 'Device twin'], ['method', 'Direct method'], ['message', 'Message to device'], ['modules', 'Module identities'], ['telemetry', 'Telemetry']].map(([to, label]) =>
      h('a', { href: `#/hub/devices/${enc(id)}${to ? `/${to}` : ''}`, 'aria-current': current === to ? 'page' : undefined }, label!)));

async function overview(main: HTMLElement): Promise<void> {
  const tile = (label: string, id: string) => h('div', { class: 'tile' }, h('span', { class: 'n', id }, '…'), h('span', {}, label));
  main.append(h('h1', {}, `${settings.hubName} | Overview`), h('dl', { class: 'props' }, h('dt', {}, 'Hostname'), h('dd', {}, settings.hubHostName)),
    h('div', { class: 'toolbar' }, button('Refresh', () => fill())), h('div', { class: 'tiles' }, tile('Devices', 'tile-devices'), tile('Connected devices', 'tile-connected'), tile('Messages per minute', 'tile-messages')));
  const set = (id: string, v: string) => (document.getElementById(id)!.textContent = v);
  const fill = async () => {
    await Promise.all([
      call<{ totalDeviceCount: number }>('hub', 'GET', '/statistics/devices').then((r) => set('tile-devices', String(r.body.totalDeviceCount)), (e) => set('tile-devices', describe(e))),
      call<{ connectedDeviceCount: number }>('hub', 'GET', '/statistics/service').then((r) => set('tile-connected', String(r.body.connectedDeviceCount)), (e) => set('tile-connected', describe(e))),
      call<{ messagesPerMinute: number }>('hub', 'GET', '/fleethub/telemetry/rate').then((r) => set('tile-messages', String(r.body.messagesPerMinute)), (e) => set('tile-messages', describe(e))),
    ]);
  };
  await fill();
}

async function devices(main: HTMLElement, _p: string[], q: URLSearchParams): Promise<void> {
  const query = field('Query', text(q.get('query') ?? 'SELECT * FROM devices'), 'IoT Hub query language, e.g. SELECT * FROM devices WHERE status = \'disabled\'');
  const results = h('div', { 'aria-live': 'polite' });
  const tokens: (string | undefined)[] = [undefined];
  let index = 0;
  const prev = button('Previous page', () => load(index - 1));
  const next = button('Next page', () => load(index + 1));
  const load = async (i: number) => {
    query.setError('');
    try {
      const page = await queryPage<Device>('hub', '/devices/query', { query: query.input.value }, PAGE_SIZE, tokens[i]);
      index = i;
      tokens[i + 1] = page.continuation;
      prev.disabled = i === 0;
      next.disabled = !page.continuation;
      results.replaceChildren(table(['Device ID', 'Status', 'Connection state', 'Authentication type', 'Cloud to device message count'],
        page.items.map((d) => [h('a', { href: `#/hub/devices/${enc(d.deviceId)}` }, d.deviceId), d.status, d.connectionState ?? '', d.authentication?.type ?? (d as unknown as { authenticationType?: string }).authenticationType ?? '', String(d.cloudToDeviceMessageCount ?? 0)]),
        `Page ${i + 1}, ${page.items.length} devices`));
    } catch (e) {
      query.setError(describe(e));
    }
  };
  main.append(h('h1', {}, 'Devices'),
    h('div', { class: 'toolbar' }, button('Add Device', () => go('hub/devices/add')), button('Refresh', () => load(index))),
    h('form', { role: 'search', onsubmit: (e: Event) => { e.preventDefault(); tokens.length = 1; void load(0); } }, query.wrap, h('button', { type: 'submit', class: 'primary' }, 'Search')),
    results, h('div', { class: 'toolbar' }, prev, next));
  prev.disabled = next.disabled = true;
  await load(0);
}

function addDevice(main: HTMLElement): void {
  const id = field('Device ID', text('', { required: true }));
  const primary = field('Primary key', text());
  const secondary = field('Secondary key', text());
  const pt = field('Primary Thumbprint', text());
  const st = field('Secondary Thumbprint', text());
  const auto = h('input', { type: 'checkbox', id: 'auto-keys', checked: true });
  const keys = h('div', {}, h('div', { class: 'field' }, auto, h('label', { for: 'auto-keys' }, ' Auto-generate keys')), primary.wrap, secondary.wrap);
  const thumbs = h('div', { hidden: true }, pt.wrap, st.wrap);
  const show = (v: string) => {
    keys.hidden = v !== 'sas';
    thumbs.hidden = v !== 'selfSigned';
  };
  const type = radios('Authentication type', 'authtype', [['sas', 'Symmetric key'], ['selfSigned', 'X.509 Self-Signed'], ['certificateAuthority', 'X.509 CA Signed']], 'sas', show);
  const connect = radios('Connect this device to an IoT hub', 'status', [['enabled', 'Enable'], ['disabled', 'Disable']], 'enabled');
  const edge = h('input', { type: 'checkbox', id: 'edge' });
  auto.addEventListener('change', () => { primary.wrap.hidden = secondary.wrap.hidden = auto.checked; });
  primary.wrap.hidden = secondary.wrap.hidden = true;
  main.append(h('h1', {}, 'Create a device'), id.wrap, h('div', { class: 'field' }, edge, h('label', { for: 'edge' }, ' IoT Edge Device')), type.el, keys, thumbs, connect.el,
    h('div', { class: 'toolbar' }, button('Save', async () => {
      const t = type.value();
      const authentication =
        t === 'sas' ? { type: 'sas', symmetricKey: auto.checked ? { primaryKey: newKey(), secondaryKey: newKey() } : { primaryKey: primary.input.value, secondaryKey: secondary.input.value } }
        : t === 'selfSigned' ? { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: pt.input.value || null, secondaryThumbprint: st.input.value || null } }
        : { type: 'certificateAuthority' };
      const body = { deviceId: id.input.value, status: connect.value(), authentication, capabilities: { iotEdge: edge.checked } };
      const r = await attempt(() => call('hub', 'PUT', `/devices/${enc(id.input.value)}`, body), (m) => (t === 'selfSigned' && /thumbprint/i.test(m) ? pt : id).setError(m));
      if (r) go(`hub/devices/${enc(id.input.value)}`);
    }, true)));
}

async function device(main: HTMLElement, [id]: string[]): Promise<void> {
  const d = (await call<Device>('hub', 'GET', `/devices/${enc(id!)}`)).body;
  const status = radios('Enable connection to IoT Hub', 'status', [['enabled', 'Enable'], ['disabled', 'Disable']], d.status);
  const err = h('div', { class: 'error', role: 'alert' });
  const host = session?.hub?.host ?? settings.hubHostName;
  const cs = (key: string | null) => `HostName=${host};DeviceId=${d.deviceId};SharedAccessKey=${key ?? ''}`;
  main.append(h('h1', {}, d.deviceId), deviceTabs(d.deviceId, ''),
    h('div', { class: 'toolbar' },
      button('Save', async () => {
        const r = await attempt(() => call('hub', 'PUT', `/devices/${enc(d.deviceId)}`, { ...d, status: status.value() }, { 'if-match': `"${d.etag}"` }), (m) => (err.textContent = m));
        if (r) await render(main, id!);
      }, true),
      button('Refresh', () => render(main, id!)),
      button('Delete', async () => {
        if (!(await confirmDialog(`Are you sure you want to delete device '${d.deviceId}'?`))) return;
        const r = await attempt(() => call('hub', 'DELETE', `/devices/${enc(d.deviceId)}`, undefined, { 'if-match': '*' }), (m) => (err.textContent = m));
        if (r) go('hub/devices');
      })),
    err,
    h('dl', { class: 'props' }, h('dt', {}, 'Device ID'), h('dd', {}, d.deviceId), h('dt', {}, 'Authentication type'), h('dd', {}, d.authentication.type),
      h('dt', {}, 'Connection state'), h('dd', {}, d.connectionState ?? ''), h('dt', {}, 'IoT Edge'), h('dd', {}, d.capabilities?.iotEdge ? 'Yes' : 'No')));
  if (d.authentication.type === 'sas' && d.authentication.symmetricKey) {
    const k = d.authentication.symmetricKey;
    main.append(secret('Primary key', k.primaryKey ?? ''), secret('Secondary key', k.secondaryKey ?? ''), secret('Primary connection string', cs(k.primaryKey)), secret('Secondary connection string', cs(k.secondaryKey)));
  } else if (d.authentication.x509Thumbprint) {
    main.append(h('dl', { class: 'props' }, h('dt', {}, 'Primary Thumbprint'), h('dd', {}, d.authentication.x509Thumbprint.primaryThumbprint ?? ''), h('dt', {}, 'Secondary Thumbprint'), h('dd', {}, d.authentication.x509Thumbprint.secondaryThumbprint ?? '')));
  }
  main.append(status.el);
}
async function render(main: HTMLElement, id: string) {
  main.replaceChildren();
  await device(main, [id]);
}

async function twin(main: HTMLElement, [id]: string[]): Promise<void> {
  const editor = field('Device twin', area('', { class: 'tall' }), 'Edit tags and properties.desired, then Save. The save is refused when the twin changed meanwhile (etag).');
  let etag = '';
  const load = async () => {
    const t = await call<{ etag: string }>('hub', 'GET', `/twins/${enc(id!)}`);
    etag = t.body.etag;
    editor.input.value = pretty(t.body);
  };
  main.append(h('h1', {}, `${id} | Device twin`), deviceTabs(id!, 'twin'),
    h('div', { class: 'toolbar' },
      button('Save', async () => {
        let body: string | object = editor.input.value;
        try {
          const t = JSON.parse(editor.input.value) as { tags?: unknown; properties?: { desired?: unknown } };
          body = { tags: t.tags ?? {}, properties: { desired: t.properties?.desired ?? {} } };
        } catch {
          // Sent as written: the hub's own error says what is wrong with it.
        }
        const r = await attempt(() => call<{ etag: string }>('hub', 'PUT', `/twins/${enc(id!)}`, body, { 'if-match': `"${etag}"` }), editor.setError);
        if (r) {
          etag = r.body.etag;
          editor.input.value = pretty(r.body);
          editor.error.textContent = '';
        }
      }, true),
      button('Refresh', async () => { editor.setError(''); await load(); })),
    editor.wrap);
  await load();
}

function method(main: HTMLElement, [id]: string[]): void {
  const name = field('Method Name', text());
  const payload = field('Payload', area('{}'));
  const rt = field('Method Timeout', h('input', { type: 'number', value: '30', min: '5', max: '300' }));
  const ct = field('Connection Timeout', h('input', { type: 'number', value: '0', min: '0', max: '300' }));
  const result = h('pre', { class: 'result', id: 'method-result', 'aria-live': 'polite' });
  main.append(h('h1', {}, `${id} | Direct method`), deviceTabs(id!, 'method'), name.wrap, payload.wrap, rt.wrap, ct.wrap,
    h('div', { class: 'toolbar' }, button('Invoke Method', async () => {
      result.textContent = '';
      payload.setError('');
      let p: unknown;
      try {
        p = payload.input.value.trim() ? JSON.parse(payload.input.value) : null;
      } catch (e) {
        return payload.setError(`The payload is not valid JSON: ${(e as Error).message}`);
      }
      const r = await attempt(() => call('hub', 'POST', `/twins/${enc(id!)}/methods`, { methodName: name.input.value, payload: p, responseTimeoutInSeconds: Number(rt.input.value), connectTimeoutInSeconds: Number(ct.input.value) }), name.setError);
      if (r) result.textContent = pretty(r.body);
    }, true)),
    h('h2', {}, 'Result'), result);
}

function message(main: HTMLElement, [id]: string[]): void {
  const body = field('Message Body', area(''));
  const messageId = field('Message ID', text());
  const props = h('tbody');
  const addRow = (k = '', v = '') => {
    const n = props.children.length + 1;
    props.append(h('tr', {}, h('td', {}, text(k, { 'aria-label': `Property ${n} key` })), h('td', {}, text(v, { 'aria-label': `Property ${n} value` }))));
  };
  addRow();
  const status = h('p', { class: 'status', role: 'status' });
  main.append(h('h1', {}, `${id} | Message to device`), deviceTabs(id!, 'message'), body.wrap, messageId.wrap,
    h('h2', {}, 'Properties'), h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Value'))), props),
    h('div', { class: 'toolbar' }, button('Add Property', () => addRow()),
      button('Send Message', async () => {
        status.textContent = '';
        const properties: Record<string, string> = {};
        for (const row of props.querySelectorAll('tr')) {
          const [k, v] = [...row.querySelectorAll('input')].map((i) => i.value);
          if (k) properties[k] = v ?? '';
        }
        const r = await attempt(() => call('hub', 'POST', `/fleethub/devices/${enc(id!)}/messages/devicebound`, { body: body.input.value, properties, ...(messageId.input.value ? { messageId: messageId.input.value } : {}) }), body.setError);
        if (r) status.textContent = 'Message sent.';
      }, true)),
    status);
}

async function modules(main: HTMLElement, [id]: string[]): Promise<void> {
  const list = (await call<{ moduleId: string; connectionState?: string; lastActivityTime?: string }[]>('hub', 'GET', `/devices/${enc(id!)}/modules`)).body;
  main.append(h('h1', {}, `${id} | Module identities`), deviceTabs(id!, 'modules'),
    list.length ? table(['Module ID', 'Connection state', 'Last activity time'], list.map((m) => [m.moduleId, m.connectionState ?? '', m.lastActivityTime ?? ''])) : h('p', {}, 'There are no module identities for this device.'));
}

interface TelemetryEvent {
  enqueuedTime: string;
  systemProperties: Record<string, string>;
  properties: Record<string, string>;
  body: string;
}

function telemetry(main: HTMLElement, [id]: string[]): void {
  const from = radios('Start from', 'from', [['now', 'Now'], ['time', 'A chosen time']], 'now', (v) => { when.wrap.hidden = v !== 'time'; });
  const when = field('Enqueued time', h('input', { type: 'datetime-local', step: '1' }));
  when.wrap.hidden = true;
  const rows = h('tbody', { id: 'telemetry-rows' });
  const chart = h('div', { id: 'telemetry-chart' });
  const status = h('p', { role: 'status', class: 'muted' }, 'Stopped.');
  const series = new Map<string, { t: number; v: number }[]>();
  let abort: AbortController | undefined;
  const start = async () => {
    abort?.abort();
    when.setError('');
    const params = new URLSearchParams({ deviceId: id! });
    if (from.value() === 'time') {
      const t = Date.parse(when.input.value);
      if (Number.isNaN(t)) return when.setError('Choose a time to start from.');
      params.set('from', new Date(t).toISOString());
    } else params.set('from', 'now');
    abort = new AbortController();
    status.textContent = 'Receiving events…';
    streamTelemetry(params.toString(), (raw) => {
      const e = raw as TelemetryEvent;
      rows.prepend(h('tr', {}, h('td', {}, e.enqueuedTime), h('td', {}, h('pre', {}, pretty(e.systemProperties))), h('td', {}, h('pre', {}, pretty(e.properties))), h('td', {}, h('pre', {}, e.body))));
      while (rows.children.length > 200) rows.lastElementChild!.remove();
      try {
        const body = JSON.parse(e.body) as Record<string, unknown>;
        for (const [k, v] of Object.entries(body ?? {})) {
          if (typeof v !== 'number') continue;
          const s = series.get(k) ?? [];
          s.push({ t: Date.parse(e.enqueuedTime), v });
          if (s.length > 300) s.shift();
          series.set(k, s);
        }
        chart.replaceChildren(telemetryChart(series));
      } catch {
        // Not JSON: shown in the table only.
      }
    }, abort.signal).catch((err) => {
      if (!abort?.signal.aborted) when.setError(describe(err));
    });
  };
  main.append(h('h1', {}, `${id} | Telemetry`), deviceTabs(id!, 'telemetry'), from.el, when.wrap,
    h('div', { class: 'toolbar' }, button('Start', start, true), button('Stop', () => { abort?.abort(); status.textContent = 'Stopped.'; })),
    status, chart,
    h('table', {}, h('thead', {}, h('tr', {}, ...['Enqueued time', 'System properties', 'Application properties', 'Body'].map((x) => h('th', { scope: 'col' }, x)))), rows));
  window.addEventListener('hashchange', () => abort?.abort(), { once: true });
}

async function certificates(main: HTMLElement): Promise<void> {
  const list = (await call<{ value: { name: string; subject?: string; thumbprint?: string; isVerified?: boolean; expiry?: string }[] }>('hub', 'GET', '/fleethub/certificates')).body.value;
  main.append(h('h1', {}, 'Certificates'), list.length
    ? table(['Name', 'Subject', 'Thumbprint', 'Status', 'Expiry'], list.map((c) => [c.name, c.subject ?? '', c.thumbprint ?? '', c.isVerified ? 'Verified' : 'Unverified', c.expiry ?? '']))
    : h('p', {}, 'No certificates.'));
}

function policies(main: HTMLElement): void {
  main.append(h('h1', {}, 'Shared access policies'));
  if (session?.hub) {
    append(main, [table(['Access policy name', 'Key'], [[session.hub.keyName, secret('Primary key', session.hub.key)]]),
      h('p', { class: 'muted' }, 'The policy you signed in with. All policies and their rights are listed through the control plane (fleethub policy list).')]);
  } else {
    main.append(h('p', {}, 'Signed in with Azure AD: the hub is used through your role assignments, not a shared access policy.'));
  }
}

export const hubRoutes: Route[] = [
  { pattern: /^hub\/overview$/, page: overview, needs: 'hub' },
  { pattern: /^hub\/devices$/, page: devices, needs: 'hub' },
  { pattern: /^hub\/devices\/add$/, page: addDevice, needs: 'hub' },
  { pattern: /^hub\/devices\/([^/]+)$/, page: device, needs: 'hub' },
  { pattern: /^hub\/devices\/([^/]+)\/twin$/, page: twin, needs: 'hub' },
  { pattern: /^hub\/devices\/([^/]+)\/method$/, page: method, needs: 'hub' },
  { pattern: /^hub\/devices\/([^/]+)\/message$/, page: message, needs: 'hub' },
  { pattern: /^hub\/devices\/([^/]+)\/modules$/, page: modules, needs: 'hub' },
  { pattern: /^hub\/devices\/([^/]+)\/telemetry$/, page: telemetry, needs: 'hub' },
  { pattern: /^hub\/certificates$/, page: certificates, needs: 'hub' },
  { pattern: /^hub\/policies$/, page: policies, needs: 'hub' },
];
