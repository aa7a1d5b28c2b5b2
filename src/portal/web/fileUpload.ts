/// <reference lib="dom" />
// The hub's File upload blade: the storage container, how the hub authenticates to it, and the
// notifications; saved as a PUT of the hub resource (storageEndpoints.$default,
// enableFileUploadNotifications, messagingEndpoints.fileNotifications).
import { h, field, text, radios, button, uid } from './dom.js';
import { attempt, type Route } from './nav.js';
import { getHub, putHub, needsManagement, authenticationChoice, outboundFor, isoSeconds, numberInput } from './hubResource.js';

const TITLE = 'File upload';

async function fileUpload(main: HTMLElement): Promise<void> {
  if (needsManagement(main, TITLE)) return;
  const hub = await getHub();
  const p = hub.properties;
  const st = p.storageEndpoints.$default;
  const fn = p.messagingEndpoints.fileNotifications;
  const cs = field('Storage connection string', h('input', { type: 'password', value: st.connectionString ?? '', autocomplete: 'off' }),
    'The storage account\'s connection string (identity-based: one that names the account\'s endpoint, without a key). Empty: Fleethub\'s embedded storage.');
  const container = field('Container name', text(st.containerName ?? ''), 'Empty with the embedded storage: its default container.');
  const auth = authenticationChoice(hub, st, () => undefined);
  const notify = radios('Receive file upload notifications', uid('notify'), [['on', 'On'], ['off', 'Off']], p.enableFileUploadNotifications ? 'on' : 'off');
  const hours = (d: string) => Math.round(isoSeconds(d) / 3600) || 1;
  const sasTtl = field('SAS TTL (hours)', numberInput(hours(st.sasTtlAsIso8601), 1, 24), 'How long the SAS URI a device gets is valid: 1-24 hours.');
  const ttl = field('Default TTL (hours)', numberInput(hours(fn.ttlAsIso8601), 1, 48), 'How long a file upload notification stays in the queue: 1-48 hours.');
  const maxDelivery = field('Maximum delivery count', numberInput(fn.maxDeliveryCount, 1, 100), '1-100.');
  const lock = field('Lock duration (seconds)', numberInput(isoSeconds(fn.lockDurationAsIso8601) || 60, 5, 300), '5-300 seconds.');
  const err = h('div', { class: 'error', role: 'alert', id: 'file-upload-error' });
  const status = h('p', { class: 'status', role: 'status' });
  main.append(h('h1', {}, TITLE),
    h('fieldset', {}, h('legend', {}, 'Storage container'), cs.wrap, container.wrap), auth.el,
    notify.el, sasTtl.wrap, ttl.wrap, maxDelivery.wrap, lock.wrap,
    h('div', { class: 'toolbar' }, button('Save', async () => {
      status.textContent = '';
      const ok = await attempt(() => putHub((x) => {
        const { identity: _i, authenticationType: _a, ...rest } = x.properties.storageEndpoints.$default;
        x.properties.storageEndpoints.$default = {
          ...rest,
          connectionString: cs.input.value.trim(),
          containerName: container.input.value.trim(),
          sasTtlAsIso8601: `PT${Number(sasTtl.input.value)}H`,
          ...outboundFor(auth.choice(), auth.identity()),
        };
        x.properties.enableFileUploadNotifications = notify.value() === 'on';
        x.properties.messagingEndpoints.fileNotifications = {
          ttlAsIso8601: `PT${Number(ttl.input.value)}H`,
          maxDeliveryCount: Number(maxDelivery.input.value),
          lockDurationAsIso8601: `PT${Number(lock.input.value)}S`,
        };
      }), (m) => (err.textContent = m));
      if (ok) status.textContent = 'Saved.';
    }, true)),
    err, status);
}

export const fileUploadRoutes: Route[] = [{ pattern: /^hub\/file-upload$/, page: fileUpload, needs: 'hub' }];
