/// <reference lib="dom" />
import { h, field, text, area, select, button, confirmDialog, table, pretty, secret } from './dom.js';
import { call, queryPage, settings, newKey, describe } from './api.js';
import { go, attempt, type Route } from './nav.js';

const enc = encodeURIComponent;

interface Enrollment {
  registrationId?: string;
  enrollmentGroupId?: string;
  deviceId?: string;
  etag?: string;
  attestation: { type: string; x509?: { clientCertificates?: unknown; signingCertificates?: unknown; caReferences?: { primary?: string } }; tpm?: { endorsementKey?: string }; symmetricKey?: { primaryKey?: string; secondaryKey?: string } };
  iotHubHostName?: string;
  iotHubs?: string[];
  allocationPolicy?: string;
  reprovisionPolicy?: { updateHubAssignment: boolean; migrateDeviceData: boolean };
  initialTwin?: { tags?: unknown; properties?: { desired?: unknown } };
  capabilities?: { iotEdge: boolean };
  provisioningStatus?: string;
  createdDateTimeUtc?: string;
  lastUpdatedDateTimeUtc?: string;
}

function overview(main: HTMLElement): void {
  main.append(h('h1', {}, 'Device Provisioning Service | Overview'),
    h('dl', { class: 'props' }, h('dt', {}, 'Service endpoint'), h('dd', {}, settings.dpsHostName ?? ''), h('dt', {}, 'Global device endpoint'), h('dd', {}, settings.dpsHostName ?? ''), h('dt', {}, 'ID Scope'), h('dd', {}, settings.idScope ?? '')));
}

const enrollmentTabs = (current: 'groups' | 'individual') =>
  h('nav', { class: 'tabs', 'aria-label': 'Manage enrollments' },
    h('a', { href: '#/dps/enrollments/groups', 'aria-current': current === 'groups' ? 'page' : undefined }, 'Enrollment groups'),
    h('a', { href: '#/dps/enrollments/individual', 'aria-current': current === 'individual' ? 'page' : undefined }, 'Individual enrollments'));

async function enrollments(main: HTMLElement, [tab]: string[]): Promise<void> {
  const kind = tab === 'individual' ? 'individual' : 'groups';
  const err = h('div', { class: 'error', role: 'alert' });
  const list = h('div');
  const tokens: (string | undefined)[] = [undefined];
  let index = 0;
  const next = button('Next page', () => load(index + 1));
  const prev = button('Previous page', () => load(index - 1));
  const load = async (i: number) => {
    err.textContent = '';
    try {
      const page = await queryPage<Enrollment>('dps', kind === 'groups' ? '/enrollmentGroups/query' : '/enrollments/query', { query: kind === 'groups' ? 'SELECT * FROM enrollmentGroups' : 'SELECT * FROM enrollments' }, 50, tokens[i]);
      index = i;
      tokens[i + 1] = page.continuation;
      prev.disabled = i === 0;
      next.disabled = !page.continuation;
      list.replaceChildren(kind === 'groups'
        ? table(['Group name', 'Mechanism', 'Provisioning status', 'Last updated'], page.items.map((e) => [h('a', { href: `#/dps/enrollments/groups/${enc(e.enrollmentGroupId!)}` }, e.enrollmentGroupId!), mechanismLabel(e.attestation.type), e.provisioningStatus ?? '', e.lastUpdatedDateTimeUtc ?? '']))
        : table(['Registration ID', 'Device ID', 'Mechanism', 'Provisioning status', 'Last updated'], page.items.map((e) => [h('a', { href: `#/dps/enrollments/individual/${enc(e.registrationId!)}` }, e.registrationId!), e.deviceId ?? '', mechanismLabel(e.attestation.type), e.provisioningStatus ?? '', e.lastUpdatedDateTimeUtc ?? ''])));
    } catch (e) {
      err.textContent = describe(e);
    }
  };
  main.append(h('h1', {}, 'Manage enrollments'), enrollmentTabs(kind),
    h('div', { class: 'toolbar' }, button(kind === 'groups' ? 'Add enrollment group' : 'Add individual enrollment', () => go(`dps/enrollments/${kind}/add`)), button('Refresh', () => load(index))),
    err, list, h('div', { class: 'toolbar' }, prev, next));
  await load(0);
}

const mechanismLabel = (t: string) => (t === 'x509' ? 'X.509' : t === 'tpm' ? 'TPM' : t === 'symmetricKey' ? 'Symmetric Key' : t);

/** The settings an enrollment and a group share (Azure's "IoT hub", allocation, reprovisioning, twin, Edge, status). */
function commonFields(e?: Enrollment) {
  const hub = field('IoT hub', select([['', '(any linked hub)'], [settings.hubHostName, settings.hubHostName]], e?.iotHubHostName ?? (e?.iotHubs?.[0] ?? '')));
  const allocation = field('Allocation policy', select([['hashed', 'Evenly weighted distribution'], ['geoLatency', 'Lowest latency'], ['static', 'Static configuration'], ['custom', 'Custom (use Azure Function)']], e?.allocationPolicy ?? 'hashed'));
  const rp = e?.reprovisionPolicy;
  const reprovision = field('Reprovisioning', select([['migrate', 'Re-provision device and migrate current data'], ['reset', 'Re-provision device and reset to initial config'], ['never', 'Never re-provision device']], !rp ? 'migrate' : !rp.updateHubAssignment ? 'never' : rp.migrateDeviceData ? 'migrate' : 'reset'));
  const twin = field('Initial device twin state', area(pretty(e?.initialTwin ?? { tags: {}, properties: { desired: {} } })));
  const edge = field('IoT Edge device', select([['false', 'False'], ['true', 'True']], String(e?.capabilities?.iotEdge ?? false)));
  const status = field('Provisioning status', select([['enabled', 'Enable'], ['disabled', 'Disable']], e?.provisioningStatus ?? 'enabled'));
  return {
    elements: [hub.wrap, allocation.wrap, reprovision.wrap, twin.wrap, edge.wrap, status.wrap],
    twin,
    /** The body's common part, or a message for the twin field. */
    read(): Partial<Enrollment> | string {
      let initialTwin: Enrollment['initialTwin'];
      try {
        initialTwin = twin.input.value.trim() ? JSON.parse(twin.input.value) : undefined;
      } catch (x) {
        return `Initial device twin state is not valid JSON: ${(x as Error).message}`;
      }
      const r = reprovision.input.value;
      return {
        ...(hub.input.value ? { iotHubs: [hub.input.value] } : {}),
        allocationPolicy: allocation.input.value,
        reprovisionPolicy: { updateHubAssignment: r !== 'never', migrateDeviceData: r === 'migrate' },
        ...(initialTwin ? { initialTwin } : {}),
        capabilities: { iotEdge: edge.input.value === 'true' },
        provisioningStatus: status.input.value,
      };
    },
  };
}

/** Where an API error belongs: the field it names, else the first field. */
function place(message: string, fields: [RegExp, (m: string) => void][], fallback: (m: string) => void): void {
  for (const [re, show] of fields) if (re.test(message)) return show(message);
  fallback(message);
}

function pemFile(label: string) {
  const f = field(label, h('input', { type: 'file', accept: '.pem,.cer,.crt' }));
  return {
    f,
    async read(): Promise<string | undefined> {
      const file = (f.input as HTMLInputElement).files?.[0];
      return file ? file.text() : undefined;
    },
  };
}

function addEnrollment(main: HTMLElement, [tab]: string[]): void {
  const group = tab === 'groups';
  const id = group ? field('Group name', text()) : field('Registration ID', text());
  const deviceId = field('IoT Hub Device ID', text());
  const mechanisms: [string, string][] = group ? [['x509', 'X.509'], ['symmetricKey', 'Symmetric Key']] : [['x509', 'X.509'], ['tpm', 'TPM'], ['symmetricKey', 'Symmetric Key']];
  const mechanism = field('Mechanism', select(mechanisms, 'x509'));
  const primaryCert = pemFile('Primary Certificate .pem or .cer file');
  const secondaryCert = pemFile('Secondary Certificate .pem or .cer file');
  const caRef = field('Primary CA certificate (a verified certificate of this service)', text());
  const ek = field('Endorsement key', area('', { rows: 4 }));
  const auto = h('input', { type: 'checkbox', id: 'auto-keys', checked: true });
  const pk = field('Primary Key', text());
  const sk = field('Secondary Key', text());
  const x509Box = h('div', {}, primaryCert.f.wrap, secondaryCert.f.wrap, group ? caRef.wrap : null);
  const tpmBox = h('div', { hidden: true }, ek.wrap);
  const keyBox = h('div', { hidden: true }, h('div', { class: 'field' }, auto, h('label', { for: 'auto-keys' }, ' Auto-generate keys')), pk.wrap, sk.wrap);
  pk.wrap.hidden = sk.wrap.hidden = true;
  auto.addEventListener('change', () => { pk.wrap.hidden = sk.wrap.hidden = auto.checked; });
  mechanism.input.addEventListener('change', () => {
    const m = mechanism.input.value;
    x509Box.hidden = m !== 'x509';
    tpmBox.hidden = m !== 'tpm';
    keyBox.hidden = m !== 'symmetricKey';
  });
  const common = commonFields();
  const general = h('div', { class: 'error', role: 'alert' });
  main.append(h('h1', {}, group ? 'Add enrollment group' : 'Add individual enrollment'), general, mechanism.wrap, x509Box, tpmBox, keyBox, id.wrap, ...(group ? [] : [deviceId.wrap]), ...common.elements,
    h('div', { class: 'toolbar' }, button('Save', async () => {
      for (const f of [id, deviceId, mechanism, primaryCert.f, secondaryCert.f, caRef, ek, pk, common.twin]) f.setError('');
      general.textContent = '';
      const rest = common.read();
      if (typeof rest === 'string') return common.twin.setError(rest);
      const m = mechanism.input.value;
      let attestation: Enrollment['attestation'];
      if (m === 'x509') {
        const p = await primaryCert.read();
        const s = await secondaryCert.read();
        if (group && caRef.input.value) attestation = { type: 'x509', x509: { caReferences: { primary: caRef.input.value } } };
        else {
          const certs = { primary: { certificate: p ?? '' }, ...(s ? { secondary: { certificate: s } } : {}) };
          attestation = { type: 'x509', x509: group ? { signingCertificates: certs } : { clientCertificates: certs } };
        }
      } else if (m === 'tpm') attestation = { type: 'tpm', tpm: { endorsementKey: ek.input.value.trim() } };
      else attestation = { type: 'symmetricKey', symmetricKey: auto.checked ? { primaryKey: newKey(), secondaryKey: newKey() } : { primaryKey: pk.input.value, secondaryKey: sk.input.value } };
      const name = id.input.value;
      const body: Enrollment = group
        ? { enrollmentGroupId: name, attestation, ...rest }
        : { registrationId: name, ...(deviceId.input.value ? { deviceId: deviceId.input.value } : {}), attestation, ...rest };
      const path = group ? `/enrollmentGroups/${enc(name)}` : `/enrollments/${enc(name)}`;
      const r = await attempt(() => call('dps', 'PUT', path, body), (msg) =>
        place(msg, [
          [/certificate|x509/i, primaryCert.f.setError], [/endorsement|tpm/i, ek.setError], [/symmetricKey|primaryKey/i, pk.setError],
          [/initialTwin|twin/i, common.twin.setError], [/deviceId/i, deviceId.setError], [/registration id|registrationId|enrollment group id|enrollmentGroupId|id/i, id.setError],
        ], general.append.bind(general)));
      if (r) go(`dps/enrollments/${group ? 'groups' : 'individual'}/${enc(name)}`);
    }, true)));
}

async function enrollmentDetail(main: HTMLElement, [tab, id]: string[]): Promise<void> {
  const group = tab === 'groups';
  const path = group ? `/enrollmentGroups/${enc(id!)}` : `/enrollments/${enc(id!)}`;
  const e = (await call<Enrollment>('dps', 'GET', path)).body;
  const deviceId = field('IoT Hub Device ID', text(e.deviceId ?? ''));
  const common = commonFields(e);
  const general = h('div', { class: 'error', role: 'alert' });
  const saved = h('p', { class: 'status', role: 'status' });
  main.append(h('h1', {}, `${id} | ${group ? 'Enrollment group details' : 'Enrollment details'}`),
    h('div', { class: 'toolbar' },
      button('Save', async () => {
        common.twin.setError('');
        deviceId.setError('');
        general.textContent = saved.textContent = '';
        const rest = common.read();
        if (typeof rest === 'string') return common.twin.setError(rest);
        // The attestation is kept as stored: what GET returns (certificate info, no keys) writes back unchanged.
        const body: Enrollment = { ...e, ...rest, ...(group ? {} : { deviceId: deviceId.input.value || undefined }) };
        if (!rest.iotHubs) delete body.iotHubs;
        const r = await attempt(() => call<Enrollment>('dps', 'PUT', path, body, { 'if-match': `"${e.etag}"` }), (msg) =>
          place(msg, [[/initialTwin|twin/i, common.twin.setError], [/deviceId/i, deviceId.setError]], (m) => (general.textContent = m)));
        if (r) {
          Object.assign(e, r.body);
          saved.textContent = 'Saved.';
        }
      }, true),
      button('Refresh', async () => { main.replaceChildren(); await enrollmentDetail(main, [tab!, id!]); }),
      button('Delete', async () => {
        if (!(await confirmDialog(`Are you sure you want to delete ${group ? 'enrollment group' : 'enrollment'} '${id}'?`))) return;
        const r = await attempt(() => call('dps', 'DELETE', path, undefined, { 'if-match': '*' }), (m) => (general.textContent = m));
        if (r) go(`dps/enrollments/${group ? 'groups' : 'individual'}`);
      })),
    general, saved,
    h('dl', { class: 'props' }, h('dt', {}, group ? 'Group name' : 'Registration ID'), h('dd', {}, id!), h('dt', {}, 'Mechanism'), h('dd', {}, mechanismLabel(e.attestation.type)),
      ...(e.attestation.x509?.caReferences?.primary ? [h('dt', {}, 'Primary CA certificate'), h('dd', {}, e.attestation.x509.caReferences.primary)] : []),
      ...(e.attestation.tpm?.endorsementKey ? [h('dt', {}, 'Endorsement key'), h('dd', {}, e.attestation.tpm.endorsementKey)] : [])));
  if (e.attestation.type === 'symmetricKey') {
    const keys = await call<{ symmetricKey?: { primaryKey: string; secondaryKey: string } }>('dps', 'POST', `${path}/attestationmechanism`).catch(() => undefined);
    if (keys?.body.symmetricKey) main.append(secret('Primary Key', keys.body.symmetricKey.primaryKey), secret('Secondary Key', keys.body.symmetricKey.secondaryKey));
  }
  if (!group) main.append(deviceId.wrap);
  main.append(...common.elements, h('h2', {}, 'Registration records'));
  const records = group
    ? (await queryPage<Record<string, string>>('dps', `/registrations/${enc(id!)}/query`, {}, 50).catch(() => ({ items: [] }))).items
    : await call<Record<string, string>>('dps', 'GET', `/registrations/${enc(id!)}`).then((r) => [r.body], () => []);
  main.append(records.length
    ? table(['Registration ID', 'Device ID', 'Status', 'Assigned hub', 'Last updated'], records.map((r) => [r.registrationId ?? '', r.deviceId ?? '', r.status ?? '', r.assignedHub ?? '', r.lastUpdatedDateTimeUtc ?? '']))
    : h('p', {}, 'No registration records.'));
}

function linkedHubs(main: HTMLElement): void {
  main.append(h('h1', {}, 'Linked IoT hubs'), table(['Name', 'Allocation weight'], [[settings.hubHostName, '1']]),
    h('p', { class: 'muted' }, 'Every hub of this Fleethub process is linked; more are configured with dps.linkedHubs.'));
}

async function certificates(main: HTMLElement): Promise<void> {
  const list = (await call<{ value: { name: string; subject?: string; thumbprint?: string; isVerified?: boolean }[] }>('dps', 'GET', '/fleethub/dps/certificates')).body.value;
  main.append(h('h1', {}, 'Certificates'), list.length ? table(['Name', 'Subject', 'Thumbprint', 'Status'], list.map((c) => [c.name, c.subject ?? '', c.thumbprint ?? '', c.isVerified ? 'Verified' : 'Unverified'])) : h('p', {}, 'No certificates.'));
}

export const dpsRoutes: Route[] = [
  { pattern: /^dps\/overview$/, page: overview, needs: 'dps' },
  { pattern: /^dps\/enrollments$/, page: (m) => enrollments(m, ['groups']), needs: 'dps' },
  { pattern: /^dps\/enrollments\/(groups|individual)$/, page: enrollments, needs: 'dps' },
  { pattern: /^dps\/enrollments\/(groups|individual)\/add$/, page: addEnrollment, needs: 'dps' },
  { pattern: /^dps\/enrollments\/(groups|individual)\/([^/]+)$/, page: enrollmentDetail, needs: 'dps' },
  { pattern: /^dps\/linked-hubs$/, page: linkedHubs, needs: 'dps' },
  { pattern: /^dps\/certificates$/, page: certificates, needs: 'dps' },
];
