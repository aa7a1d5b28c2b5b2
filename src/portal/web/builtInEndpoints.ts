/// <reference lib="dom" />
// The hub's Built-in endpoints blade, as Azure's portal has it: the Event Hub-compatible endpoint
// (its name, partitions, and its connection string for a shared access policy the user picks, the
// keys read through ARM's listkeys), its consumer groups (child resources: added with a PUT, removed
// with a DELETE), and Cloud to device messaging: the default time to live of a message, how long
// feedback is kept, and how often a message is delivered before it is dead-lettered, saved as a PUT
// of the hub resource (properties.cloudToDevice).
import { h, field, button, select, secret, table, text, confirmDialog } from './dom.js';
import { attempt, type Route } from './nav.js';
import { getHub, putHub, needsManagement, isoSeconds, numberInput, hubPath, enc } from './hubResource.js';
import { call, ARM_HUB_API } from './api.js';

const TITLE = 'Built-in endpoints';

interface CloudToDevice {
  maxDeliveryCount: number;
  defaultTtlAsIso8601: string;
  feedback: { lockDurationAsIso8601: string; ttlAsIso8601: string; maxDeliveryCount: number };
}

async function builtInEndpoints(main: HTMLElement): Promise<void> {
  if (needsManagement(main, TITLE)) return;
  const hub = await getHub();
  const c2d = hub.properties.cloudToDevice as CloudToDevice;
  const events = (hub.properties.eventHubEndpoints as { events?: { path?: string; endpoint?: string; partitionCount?: number } } | undefined)?.events ?? {};
  const hours = (d: string) => Math.max(1, Math.round(isoSeconds(d) / 3600) || 1);
  const ttl = field('Default TTL (hours)', numberInput(hours(c2d.defaultTtlAsIso8601), 1, 48), 'How long a cloud-to-device message sent without an expiry stays in the device queue: 1-48 hours.');
  const retention = field('Feedback retention time (hours)', numberInput(hours(c2d.feedback.ttlAsIso8601), 1, 48), 'How long the hub keeps feedback on cloud-to-device messages for the service: 1-48 hours.');
  const maxDelivery = field('Maximum delivery count', numberInput(c2d.maxDeliveryCount, 1, 100), 'How often a message is delivered to a device that does not complete it before it is dead-lettered: 1-100.');
  const endpoint = await eventHubEndpoint(events);
  const groups = await consumerGroups();
  const err = h('div', { class: 'error', role: 'alert', id: 'built-in-endpoints-error' });
  const status = h('p', { class: 'status', role: 'status' });
  main.append(
    h('h1', {}, TITLE),
    h('h2', {}, 'Event Hub compatible endpoint'),
    h('dl', {}, h('dt', {}, 'Event Hub-compatible name'), h('dd', {}, events.path ?? ''), h('dt', {}, 'Partitions'), h('dd', {}, String(events.partitionCount ?? ''))),
    endpoint,
    groups,
    h('h2', {}, 'Cloud to device messaging'),
    ttl.wrap,
    retention.wrap,
    maxDelivery.wrap,
    h('div', { class: 'toolbar' }, button('Save', async () => {
      status.textContent = '';
      const ok = await attempt(() => putHub((x) => {
        const current = x.properties.cloudToDevice as CloudToDevice;
        x.properties.cloudToDevice = {
          ...current,
          defaultTtlAsIso8601: `PT${Number(ttl.input.value)}H`,
          maxDeliveryCount: Number(maxDelivery.input.value),
          feedback: { ...current.feedback, ttlAsIso8601: `PT${Number(retention.input.value)}H` },
        };
      }), (m) => (err.textContent = m));
      if (ok) status.textContent = 'Saved.';
    }, true)),
    err,
    status,
  );
}

interface Policy {
  keyName: string;
  primaryKey: string;
  rights: string;
}

/**
 * The Event Hub-compatible endpoint as a connection string of the policy chosen (Azure's portal
 * offers the policies with ServiceConnect: what reading the endpoint needs).
 */
async function eventHubEndpoint(events: { path?: string; endpoint?: string }): Promise<HTMLElement> {
  const wrap = h('div', {});
  const err = h('div', { class: 'error', role: 'alert', id: 'event-hub-endpoint-error' });
  const keys = await attempt(async () => (await call<{ value: Policy[] }>('arm', 'POST', `${hubPath()}/listkeys?api-version=${ARM_HUB_API}`)).body.value, (m) => (err.textContent = m));
  const usable = (keys ?? []).filter((p) => /\bServiceConnect\b/i.test(p.rights));
  if (!usable.length) {
    wrap.append(h('p', { class: 'muted' }, keys ? 'No shared access policy with ServiceConnect: add one to read the endpoint with a connection string.' : ''), err);
    return wrap;
  }
  const connectionString = (p: Policy) => `Endpoint=${events.endpoint ?? ''};SharedAccessKeyName=${p.keyName};SharedAccessKey=${p.primaryKey};EntityPath=${events.path ?? ''}`;
  const chooser = field('Shared access policy', select(usable.map((p) => [p.keyName, p.keyName]), usable.some((p) => p.keyName === 'service') ? 'service' : usable[0]!.keyName));
  const shown = h('div', {});
  const show = () => shown.replaceChildren(secret('Event Hub-compatible endpoint', connectionString(usable.find((p) => p.keyName === chooser.input.value)!)));
  chooser.input.addEventListener('change', show);
  show();
  wrap.append(chooser.wrap, shown, err);
  return wrap;
}

/** The consumer groups of the built-in endpoint: listed, added and deleted as ARM child resources. */
async function consumerGroups(): Promise<HTMLElement> {
  const path = `${hubPath()}/eventHubEndpoints/events/ConsumerGroups`;
  const wrap = h('section', { 'aria-labelledby': 'consumer-groups' });
  const err = h('div', { class: 'error', role: 'alert', id: 'consumer-groups-error' });
  const list = h('div', {});
  const refresh = async () => {
    const groups = await attempt(async () => (await call<{ value: { name: string }[] }>('arm', 'GET', `${path}?api-version=${ARM_HUB_API}`)).body.value, (m) => (err.textContent = m));
    if (!groups) return;
    list.replaceChildren(table(['Consumer group', ''], groups.map((g) => [
      g.name,
      g.name.toLowerCase() === '$default'
        ? ''
        : button('Delete', async () => {
          if (!(await confirmDialog(`Delete the consumer group '${g.name}'? Readers using it lose their place.`))) return;
          if (await attempt(() => call('arm', 'DELETE', `${path}/${enc(g.name)}?api-version=${ARM_HUB_API}`), (m) => (err.textContent = m)) !== undefined) await refresh();
        }, false, { 'aria-label': `Delete consumer group ${g.name}` }),
    ])));
  };
  const name = field('Create new consumer group', text('', { maxlength: '50' }), '1-50 letters, digits, periods, underscores or hyphens, starting with a letter or digit.');
  wrap.append(
    h('h2', { id: 'consumer-groups' }, 'Consumer Groups'),
    list,
    name.wrap,
    h('div', { class: 'toolbar' }, button('Create consumer group', async () => {
      const n = name.input.value.trim();
      if (!n) return void (err.textContent = 'Enter the consumer group\'s name.');
      if (await attempt(() => call('arm', 'PUT', `${path}/${enc(n)}?api-version=${ARM_HUB_API}`, { properties: { name: n } }), (m) => (err.textContent = m)) !== undefined) {
        name.input.value = '';
        await refresh();
      }
    })),
    err,
  );
  await refresh();
  return wrap;
}

export const builtInEndpointsRoutes: Route[] = [{ pattern: /^hub\/built-in-endpoints$/, page: builtInEndpoints, needs: 'hub' }];
