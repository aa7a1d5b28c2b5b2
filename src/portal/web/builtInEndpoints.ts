/// <reference lib="dom" />
// The hub's Built-in endpoints blade: the Event Hub-compatible endpoint (read only here; its consumer
// groups are child resources) and Cloud to device messaging: the default time to live of a message,
// how long feedback is kept, and how often a message is delivered before it is dead-lettered. Saved
// as a PUT of the hub resource (properties.cloudToDevice), as Azure's portal does.
import { h, field, button } from './dom.js';
import { attempt, type Route } from './nav.js';
import { getHub, putHub, needsManagement, isoSeconds, numberInput } from './hubResource.js';

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
  const err = h('div', { class: 'error', role: 'alert', id: 'built-in-endpoints-error' });
  const status = h('p', { class: 'status', role: 'status' });
  main.append(
    h('h1', {}, TITLE),
    h('h2', {}, 'Event Hub compatible endpoint'),
    h('dl', {}, h('dt', {}, 'Event Hub-compatible name'), h('dd', {}, events.path ?? ''), h('dt', {}, 'Event Hub-compatible endpoint'), h('dd', {}, events.endpoint ?? ''), h('dt', {}, 'Partitions'), h('dd', {}, String(events.partitionCount ?? ''))),
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

export const builtInEndpointsRoutes: Route[] = [{ pattern: /^hub\/built-in-endpoints$/, page: builtInEndpoints, needs: 'hub' }];
