/// <reference lib="dom" />
import { h, field, text, area, button } from './dom.js';
import { loadSettings, session, saveSession, settings, parseConnectionString, describe, clientCredentialsToken, keysThroughArm, sasToken, type Session, type SasCredential } from './api.js';
import { hubRoutes } from './hub.js';
import { go, type Route } from './nav.js';
import { dpsRoutes } from './dps.js';
import { routingRoutes } from './routing.js';
import { fileUploadRoutes } from './fileUpload.js';
import { builtInEndpointsRoutes } from './builtInEndpoints.js';
import { jobsRoutes } from './jobs.js';
import { identityRoutes } from './identity.js';
import { iamRoutes } from './iam.js';
import { resourceRoutes } from './resources.js';
import { hubId, iamLink } from './arm.js';


const routes: Route[] = [{ pattern: /^signin$/, page: signInPage }, ...hubRoutes, ...dpsRoutes];
// Part 2's hub blades: message routing, file upload, jobs.
routes.push(...routingRoutes, ...fileUploadRoutes, ...builtInEndpointsRoutes, ...jobsRoutes);
// The resource pages of ARM (issue 19, part 2): Identity, Access control (IAM), Managed Identities, namespaces.
routes.push(...identityRoutes, ...iamRoutes, ...resourceRoutes);


async function render(): Promise<void> {
  const hash = location.hash.replace(/^#\/?/, '');
  // The one-time sign-in link: #signin=<code>
  const link = /^signin=(.+)$/.exec(hash);
  if (link) {
    history.replaceState(null, '', '/portal/');
    await redeemLink(decodeURIComponent(link[1]!));
    return;
  }
  const [path, qs] = hash.split('?');
  const main = document.getElementById('main')!;
  const hasHub = !!(session?.hub || session?.hubBearer);
  const hasDps = !!session?.dps;
  renderChrome(path ?? '');
  if (!session && path !== 'signin') return go('signin');
  if (!path) return go(hasHub ? 'hub/overview' : hasDps ? 'dps/overview' : 'signin');
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    if ((r.needs === 'hub' && !hasHub) || (r.needs === 'dps' && !hasDps)) break;
    main.replaceChildren();
    try {
      await r.page(main, m.slice(1).map(decodeURIComponent), new URLSearchParams(qs ?? ''));
    } catch (e) {
      main.appendChild(h('p', { class: 'error', role: 'alert' }, describe(e)));
    }
    const title = main.querySelector('h1')?.textContent;
    document.title = title ? `${title} - Fleethub` : 'Fleethub portal';
    return;
  }
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'This page does not exist or your credential does not serve it.'));
}

function renderChrome(path: string): void {
  const nav = document.getElementById('nav')!;
  const link = (to: string, label: string) => h('a', { href: `#/${to}`, 'aria-current': path === to || path.startsWith(`${to}/`) ? 'page' : undefined }, label);
  nav.replaceChildren();
  if (session?.hub || session?.hubBearer) {
    nav.append(h('h2', {}, `IoT hub ${settings.hubName}`), link('hub/overview', 'Overview'), link('hub/devices', 'Devices'), link('hub/certificates', 'Certificates'), link('hub/policies', 'Shared access policies'));
    nav.append(link('hub/built-in-endpoints', 'Built-in endpoints'), link('hub/routing', 'Message routing'), link('hub/file-upload', 'File upload'), link('hub/jobs', 'Jobs'));
  }
  if (session?.dps) {
    nav.append(h('h2', {}, 'Device Provisioning Service'), link('dps/overview', 'Overview'), link('dps/enrollments', 'Manage enrollments'), link('dps/linked-hubs', 'Linked IoT hubs'), link('dps/certificates', 'Certificates'));
  }
  if (session?.management) {
    const at = path === 'iam' ? new URLSearchParams(location.hash.split('?')[1] ?? '').get('scope')?.toLowerCase() : undefined;
    const iam = (scope: string, label: string) => h('a', { href: `#/${iamLink(scope)}`, 'aria-current': at === scope.toLowerCase() ? 'page' : undefined }, label);
    nav.append(h('h2', {}, `IoT hub ${settings.hubName}: security`), link('hub/identity', 'Identity'), iam(hubId(), 'Access control (IAM)'));
    nav.append(h('h2', {}, `Resource group ${settings.resourceGroup}`), link('resources/identities', 'Managed Identities'), link('resources/eventhubs', 'Event Hubs namespaces'), link('resources/servicebus', 'Service Bus namespaces'), iam(`/subscriptions/${settings.subscriptionId}/resourceGroups/${encodeURIComponent(settings.resourceGroup)}`, 'Resource group access control (IAM)'));
  }
  nav.append(h('h2', {}, 'Account'), link('signin', session ? 'Add a credential' : 'Sign in'));
  const who = document.getElementById('who')!;
  who.replaceChildren();
  if (session) {
    who.append(
      h('span', {}, `Signed in: ${session.who} `),
      button('Sign out', () => {
        saveSession(undefined);
        go('signin');
      }),
    );
  }
}

function merge(add: Partial<Session>, who: string): void {
  const s: Session = { ...(session ?? {}), ...add, who: session ? `${session.who}, ${who}` : who };
  saveSession(s);
}

async function signInAsAdministrator(management: { token: string; expiresOn: number }, hubBearer: { token: string; expiresOn: number }): Promise<void> {
  const keys = await keysThroughArm(management);
  merge({ management, ...(keys.hub ? { hub: keys.hub } : { hubBearer }), ...(keys.dps ? { dps: keys.dps } : {}) }, 'administrator');
}

async function redeemLink(code: string): Promise<void> {
  const res = await fetch('/portal/signin', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }), credentials: 'omit' });
  const json = (await res.json()) as { hub?: { access_token: string; expires_on: number }; management?: { access_token: string; expires_on: number }; error_description?: string };
  if (!res.ok || !json.hub || !json.management) {
    go('signin');
    await new Promise((r) => setTimeout(r, 0));
    document.getElementById('signin-error')!.textContent = json.error_description ?? 'The sign-in link was not accepted.';
    return;
  }
  const t = (x: { access_token: string; expires_on: number }) => ({ token: x.access_token, expiresOn: x.expires_on * 1000 });
  await signInAsAdministrator(t(json.management), t(json.hub));
  go('');
}

/** Which service a connection string opens: the DPS answers an enrollment query, the hub its statistics. */
async function classify(c: SasCredential): Promise<'hub' | 'dps' | undefined> {
  const probe = async (path: string, method: string, body?: string) => {
    const res = await fetch(path, { method, headers: { authorization: await sasToken(c), ...(body ? { 'content-type': 'application/json' } : {}), 'x-ms-max-item-count': '1' }, ...(body ? { body } : {}), credentials: 'omit' });
    return res.ok;
  };
  if (await probe('/enrollments/query?api-version=2021-10-01', 'POST', '{"query":"SELECT * FROM enrollments"}')) return 'dps';
  if ((await probe('/statistics/service?api-version=2021-04-12', 'GET')) || (await probe('/statistics/devices?api-version=2021-04-12', 'GET'))) return 'hub';
  return undefined;
}

function signInPage(main: HTMLElement): void {
  const cs = field('Connection string', area('', { rows: 3, class: 'short', autocomplete: 'off' }), 'An IoT hub or Device Provisioning Service connection string (HostName=…;SharedAccessKeyName=…;SharedAccessKey=…). It stays in this tab.');
  const id = field('Client ID', text());
  const secret = field('Client secret', h('input', { type: 'password', autocomplete: 'off' }));
  const general = h('div', { class: 'error', id: 'signin-error', role: 'alert' });
  main.append(
    h('h1', {}, 'Sign in'),
    general,
    h('p', {}, 'Use the sign-in link that ', h('code', {}, 'fleethub start'), ' printed, the administrator\'s client id and secret (', h('code', {}, 'fleethub info --json'), ', under management), or a connection string.'),
    h('form', { 'aria-labelledby': 'cs-h', onsubmit: (e: Event) => e.preventDefault() },
      h('h2', { id: 'cs-h' }, 'With a connection string'),
      cs.wrap,
      button('Sign in with the connection string', async () => {
        cs.setError('');
        const c = parseConnectionString(cs.input.value);
        if (!c) return cs.setError('Not a connection string: HostName, SharedAccessKeyName and SharedAccessKey are needed.');
        const kind = await classify(c).catch(() => undefined);
        if (!kind) return cs.setError('Neither the IoT hub nor the provisioning service accepts this connection string.');
        merge(kind === 'hub' ? { hub: c } : { dps: c }, `${c.keyName}@${c.host}`);
        go(kind === 'hub' ? 'hub/overview' : 'dps/overview');
      }, true),
    ),
    h('form', { 'aria-labelledby': 'sp-h', onsubmit: (e: Event) => e.preventDefault() },
      h('h2', { id: 'sp-h' }, 'As the administrator (client id and secret)'),
      id.wrap,
      secret.wrap,
      button('Sign in', async () => {
        secret.setError('');
        try {
          const management = await clientCredentialsToken(id.input.value.trim(), secret.input.value, 'https://management.azure.com/.default');
          const hub = await clientCredentialsToken(id.input.value.trim(), secret.input.value, 'https://iothubs.azure.net/.default');
          await signInAsAdministrator(management, hub);
          go('');
        } catch (e) {
          secret.setError(describe(e));
        }
      }, true),
    ),
  );
}

await loadSettings();
window.addEventListener('hashchange', () => void render());
void render();
