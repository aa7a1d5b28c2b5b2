/**
 * The portal's Message routing, File upload, Built-in endpoints and Jobs blades in a real browser (Debian's chromium
 * through playwright-core): each flow clicked as a user does, its effect checked through the Azure
 * SDKs (a device over MQTT, an @azure/event-hubs consumer of a local namespace, azure-iothub's file
 * notification receiver and export job); axe-core on every page; the endpoint-add flow keyboard-only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Page } from 'playwright-core';
import deviceSdk from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import { EventHubConsumerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { EventHubManagementClient } from '@azure/arm-eventhub';
import { IotHubClient } from '@azure/arm-iothub';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { BlobServiceClient } from '@azure/storage-blob';
import { sasContainer } from './support/blobs.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { addHostEntry, removeHostEntry } from './support/resolve.js';
import { armEndpoint, defaultGroup, managementCredential, subscriptionId } from './support/arm.js';
import { createDevice, eventually } from './support/devices.js';
import { axeViolations, launchChromium, tabTo, type TestBrowser } from './support/browser.js';
import { findRole } from '../src/identity/roles.js';
import { defaults } from '../src/config/index.js';

const { Client, Message } = deviceSdk as any;
const { Mqtt } = deviceMqtt as any;
const NAMESPACE = 'portal-eh';
const EH_HOST = `${NAMESPACE}.servicebus.localhost`;

describe('portal: message routing, file upload and jobs in chromium', { timeout: 180_000 }, () => {
  let t: TestHub;
  let b: TestBrowser;
  let page: Page;
  let base: string;
  let rg: string;
  let hubRg: string;
  let iot: IotHubClient;
  let ehConnectionString: string;
  let consumer: EventHubConsumerClient;
  let stop: (() => Promise<void>) | undefined;
  const received: ReceivedEventData[] = [];

  before(async () => {
    addHostEntry(EH_HOST, '127.0.0.1');
    t = await startTestHub({
      extraHostNames: [EH_HOST],
      eventHubsNamespaces: [{ name: NAMESPACE, eventHubs: [{ name: 'routed', partitionCount: 1 }] }],
      ports: { storage: 10000 } as any,
      // Short waits: a refused delivery is retried within half a second, and is not dead for minutes.
      routing: { ...defaults.routing, retryMinMs: 100, retryMaxMs: 400, deadAfterMs: 600_000, deadProbeMs: 1000 },
    } as any);
    addHostEntry(EH_HOST, t.host);
    base = `https://${t.host}/portal/`;
    rg = defaultGroup(t);
    hubRg = (await t.hub.info()).management!.resourceGroup;
    iot = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    const eh = new EventHubManagementClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    const keys = await eh.namespaces.listKeys(rg, NAMESPACE, 'RootManageSharedAccessKey');
    ehConnectionString = `${keys.primaryConnectionString!};EntityPath=routed`;
    consumer = new EventHubConsumerClient('$Default', ehConnectionString, { retryOptions: { maxRetries: 1, timeoutInMs: 5000 } });
    const sub = consumer.subscribe('0', { processEvents: async (events) => void received.push(...events), processError: async () => undefined }, { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 });
    stop = () => sub.close();
    b = await launchChromium();
    page = await b.context.newPage();
    page.setDefaultTimeout(10_000);
    // The administrator's one-time sign-in link: the routing blades write the hub through ARM.
    await page.goto(t.hub.portal!.signInLink(`https://${t.host}`)!);
    await page.getByText('Signed in: administrator').waitFor();
  });
  after(async () => {
    await stop?.();
    await consumer?.close();
    await b?.close();
    await t?.close();
    removeHostEntry(EH_HOST);
  });

  const look = async (name: string) => {
    await page.screenshot({ path: join(b.shots, `${name}.png`), fullPage: true });
    assert.deepEqual(await axeViolations(page), [], `axe-core on ${name}`);
  };
  const routingOf = async () => (await iot.iotHubResource.get(hubRg, t.hub.config.hubName)).properties!.routing!;
  const endpointRow = (name: string) => page.locator('#endpoints tr').filter({ has: page.getByRole('link', { name, exact: true }) });
  const routedBodies = () => received.map((e) => (Buffer.isBuffer(e.body) ? e.body.toString() : typeof e.body === 'string' ? e.body : JSON.stringify(e.body)));

  test('the managed-identity flow clicked end to end: identity, IAM role, User-assigned endpoint, route; Change authentication type to System-assigned is unhealthy until the role is assigned in IAM', async () => {
    const msi = new ManagedServiceIdentityClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    const auth = new AuthorizationManagementClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    const ehId = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.EventHub/namespaces/${NAMESPACE}/eventhubs/routed`;
    const sendersAt = async () => (await all(auth.roleAssignments.listForScope(ehId, { filter: 'atScope()' })))
      .filter((a) => a.scope === ehId && a.roleDefinitionId!.endsWith(findRole('Azure Event Hubs Data Sender')!.id)).map((a) => a.principalId).sort();
    const nav = (name: string) => page.locator('#nav').getByRole('link', { name, exact: true }).click();

    // Managed Identities → Create: the user-assigned identity.
    await nav('Managed Identities');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByLabel('Name').fill('portal-router');
    await page.getByRole('button', { name: 'Review + create' }).click();
    await page.getByRole('heading', { name: 'portal-router | Overview' }).waitFor();
    const uai = await msi.userAssignedIdentities.get(rg, 'portal-router');
    // Identity blade → User assigned → Add.
    await nav('Identity');
    await page.getByRole('link', { name: 'User assigned' }).click();
    await page.getByRole('button', { name: 'Add user assigned managed identity' }).click();
    await page.getByLabel('User assigned managed identities').selectOption({ label: 'portal-router' });
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('button', { name: 'Remove portal-router' }).waitFor();
    await look('routing-flow-identity-user');
    const attached = (await iot.iotHubResource.get(hubRg, t.hub.config.hubName)).identity!;
    assert.equal(attached.type, 'UserAssigned');
    assert.deepEqual(Object.values(attached.userAssignedIdentities!).map((x) => x.principalId), [uai.principalId]);

    // IAM of the target event hub → Add role assignment: Azure Event Hubs Data Sender to the identity.
    const assignSender = async (member: 'uai' | 'system') => {
      await nav('Event Hubs namespaces');
      await page.getByRole('link', { name: NAMESPACE }).click();
      await page.getByRole('heading', { name: `${NAMESPACE} | Overview` }).waitFor();
      await page.getByRole('link', { name: 'Event Hubs', exact: true }).click();
      await page.getByRole('link', { name: 'routed' }).click();
      await page.locator('#main').getByRole('link', { name: 'Access control (IAM)' }).click();
      await page.getByRole('heading', { name: 'routed | Access control (IAM)' }).waitFor();
      await page.getByRole('button', { name: 'Add role assignment' }).click();
      await page.getByLabel('Role', { exact: true }).selectOption({ label: 'Azure Event Hubs Data Sender' });
      if (member === 'uai') {
        await page.getByLabel('User-assigned managed identity').check();
        await page.getByLabel('Members').selectOption({ label: 'portal-router' });
      } else {
        await page.getByLabel('System-assigned managed identity (IoT hub)').check();
      }
      await page.getByRole('button', { name: 'Review + assign' }).click();
      await page.getByRole('heading', { name: 'Review + assign' }).waitFor();
      await page.getByRole('button', { name: 'Review + assign' }).click();
      await page.getByRole('heading', { name: 'routed | Access control (IAM)' }).waitFor();
      await page.getByRole('cell', { name: member === 'uai' ? 'portal-router' : t.hub.config.hubName, exact: true }).waitFor();
      await look(`routing-flow-iam-${member}`);
    };
    await assignSender('uai');
    assert.deepEqual(await sendersAt(), [uai.principalId]);

    // Keyboard only: Custom endpoints, Add Event Hubs endpoint, its name and connection string, Create.
    await page.goto(`${base}#/hub/routing/endpoints`);
    await page.getByRole('heading', { name: 'Event Hubs', exact: true }).waitFor();
    await look('routing-endpoints-empty');
    await tabTo(page, page.getByRole('button', { name: 'Add Event Hubs endpoint' }));
    await page.getByRole('heading', { name: 'Add a custom endpoint' }).waitFor();
    await tabTo(page, page.getByLabel('Endpoint name'), '');
    await page.keyboard.type('eh-key');
    await tabTo(page, page.getByLabel('Connection string'), '');
    await page.keyboard.type(ehConnectionString);
    await look('routing-endpoint-add');
    await tabTo(page, page.getByRole('button', { name: 'Create' }));
    await endpointRow('eh-key').waitFor();
    assert.deepEqual((await routingOf()).endpoints!.eventHubs!.map((e) => [e.name, e.authenticationType ?? 'keyBased', e.connectionString]), [['eh-key', 'keyBased', ehConnectionString]]);

    // User-assigned, with the identity picker: endpoint URI and entity path instead of a connection string.
    await page.getByRole('button', { name: 'Add Event Hubs endpoint' }).click();
    await page.getByLabel('Endpoint name').fill('eh-uai');
    await page.getByLabel('User-assigned', { exact: true }).check();
    await page.getByLabel('User-assigned identity').selectOption(uai.id!);
    assert.equal(await page.getByLabel('Connection string').isVisible(), false);
    await page.getByLabel('Endpoint URI').fill(`sb://${EH_HOST}`);
    await page.getByLabel('Entity path').fill('routed');
    await look('routing-endpoint-add-uai');
    await page.getByRole('button', { name: 'Create' }).click();
    await endpointRow('eh-uai').waitFor();
    const uaiEndpoint = (await routingOf()).endpoints!.eventHubs!.find((e) => e.name === 'eh-uai')!;
    assert.equal(uaiEndpoint.authenticationType, 'identityBased');
    assert.equal(uaiEndpoint.identity?.userAssignedIdentity?.toLowerCase(), uai.id!.toLowerCase());
    assert.equal(uaiEndpoint.endpointUri, `sb://${EH_HOST}`);
    // A duplicate name: ARM's refusal, shown as is; nothing added.
    await page.getByRole('button', { name: 'Add Event Hubs endpoint' }).click();
    await page.getByLabel('Endpoint name').fill('eh-key');
    await page.getByLabel('Connection string').fill(ehConnectionString);
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('#endpoint-error').filter({ hasText: /eh-key/ }).waitFor();
    assert.equal((await routingOf()).endpoints!.eventHubs!.length, 2);

    // A route to the User-assigned endpoint with a condition on an application property; a condition that does not compile is refused first.
    await page.getByRole('link', { name: 'Routes' }).click();
    await page.getByRole('button', { name: 'Add' }).click();
    await page.getByLabel('Name', { exact: true }).fill('critical');
    await page.getByLabel('Endpoint', { exact: true }).selectOption('eh-uai');
    await page.getByLabel('Data source').selectOption('DeviceMessages');
    await page.getByLabel('Routing query').fill("level = 'critical' AND");
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('.error').filter({ hasText: 'IH400104' }).first().waitFor();
    assert.deepEqual((await routingOf()).routes, []);
    await page.getByLabel('Routing query').fill("level = 'critical'");
    await look('routing-route-add');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('link', { name: 'critical' }).waitFor();
    await look('routing-routes');
    assert.deepEqual((await routingOf()).routes!.map((r) => [r.name, r.source, r.condition, r.endpointNames, r.isEnabled]), [['critical', 'DeviceMessages', "level = 'critical'", ['eh-uai'], true]]);

    const d = await createDevice(t, 'routed-device');
    const device = Client.fromConnectionString(d.connectionString, Mqtt);
    await device.open();
    try {
      const send = async (body: string, level: string) => {
        const m = new Message(body);
        m.properties.add('level', level);
        await device.sendEvent(m);
      };
      await send('ignored', 'info');
      await send('first <b>critical</b>', 'critical');
      // Delivered with the user-assigned identity's token (the role given in IAM above).
      await eventually(() => routedBodies().includes('first <b>critical</b>'), 10_000);
      assert.ok(!routedBodies().includes('ignored'), 'the route took only the matching message');
      await page.getByRole('link', { name: 'Custom endpoints' }).click();
      await eventually(async () => (await endpointRow('eh-uai').locator('td').nth(2).textContent()) === 'healthy', 10_000);

      // System-assigned while the hub has no system-assigned identity: ARM's IdentityInUse, shown; nothing changes.
      await page.getByRole('link', { name: 'eh-uai', exact: true }).click();
      await page.getByRole('heading', { name: 'Change authentication type' }).waitFor();
      await page.getByLabel('System-assigned', { exact: true }).check();
      await page.getByRole('button', { name: 'Save' }).click();
      await page.locator('#endpoint-error').filter({ hasText: 'IdentityInUse' }).waitFor();
      assert.equal((await routingOf()).endpoints!.eventHubs!.find((e) => e.name === 'eh-uai')!.identity?.userAssignedIdentity?.toLowerCase(), uai.id!.toLowerCase());

      // Identity blade → System assigned → On.
      await nav('Identity');
      await page.getByRole('heading', { name: /\| Identity$/ }).waitFor();
      await page.getByLabel('On', { exact: true }).check();
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByText('Saved.').waitFor();
      const principalId = (await page.locator('#system-principal-id').textContent())!;
      await look('routing-flow-identity-system');
      const both = (await iot.iotHubResource.get(hubRg, t.hub.config.hubName)).identity!;
      assert.equal(both.type, 'SystemAssigned, UserAssigned');
      assert.equal(both.principalId, principalId);

      // A key-based endpoint switched to System-assigned gets its URI and entity path from the connection string (not saved here).
      await page.goto(`${base}#/hub/routing/endpoints/eventHubs/eh-key`);
      await page.getByRole('heading', { name: 'Change authentication type' }).waitFor();
      await page.getByLabel('System-assigned', { exact: true }).check();
      assert.equal(await page.getByLabel('Endpoint URI').inputValue(), `sb://${EH_HOST}`, 'prefilled from the connection string');
      assert.equal(await page.getByLabel('Entity path').inputValue(), 'routed');

      // Message routing → eh-uai → Change authentication type → System-assigned, which has no role yet.
      await page.getByRole('link', { name: 'Custom endpoints' }).click();
      await page.getByRole('link', { name: 'eh-uai', exact: true }).click();
      await page.getByRole('heading', { name: 'Change authentication type' }).waitFor();
      await page.getByLabel('System-assigned', { exact: true }).check();
      await look('routing-endpoint-detail');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByText('Authentication type saved.').waitFor();
      const changed = (await routingOf()).endpoints!.eventHubs!.find((e) => e.name === 'eh-uai')!;
      assert.deepEqual([changed.authenticationType, changed.endpointUri, changed.entityPath, changed.identity?.userAssignedIdentity ?? null], ['identityBased', `sb://${EH_HOST}`, 'routed', null]);

      await send('second critical', 'critical');
      await page.getByRole('link', { name: 'Custom endpoints' }).click();
      // The health refreshes itself while the page is shown.
      await endpointRow('eh-uai').filter({ hasText: 'unhealthy' }).filter({ hasText: principalId }).waitFor({ timeout: 15_000 });
      await look('routing-endpoints-unhealthy');
      assert.ok(!routedBodies().includes('second critical'));

      // IAM of the event hub → the role to the hub's system-assigned identity: the held message arrives, the endpoint is healthy.
      await assignSender('system');
      assert.deepEqual(await sendersAt(), [uai.principalId, principalId].sort());
      await eventually(() => routedBodies().includes('second critical'), 15_000);
      await page.goto(`${base}#/hub/routing/endpoints`);
      // Health is the row's third cell (the last known error stays, as in Azure).
      await eventually(async () => (await endpointRow('eh-uai').locator('td').nth(2).textContent()) === 'healthy', 10_000).catch(async (e) => {
        throw new Error(`${e.message}: ${await endpointRow('eh-uai').textContent()}`);
      });
      await look('routing-endpoints-healthy');
    } finally {
      await device.close();
    }
  });

  test('Test route shows true, false, undefined and a compilation error with its position', async () => {
    await page.getByRole('link', { name: 'Message routing' }).click();
    await page.getByRole('link', { name: 'critical' }).click();
    await page.getByRole('heading', { name: 'Test' }).waitFor();
    const result = page.locator('#route-test-result');
    await page.getByLabel('Message body').fill('{"temperature": 31}');
    await page.getByLabel('Application 1 key').fill('level');
    await page.getByLabel('Application 1 value').fill('critical');
    await page.getByRole('button', { name: 'Test route' }).click();
    await result.filter({ hasText: 'Result: true' }).waitFor();
    await page.getByLabel('Application 1 value').fill('info');
    await page.getByRole('button', { name: 'Test route' }).click();
    await result.filter({ hasText: 'Result: false' }).waitFor();
    await page.getByLabel('Application 1 key').fill('other');
    await page.getByRole('button', { name: 'Test route' }).click();
    await result.filter({ hasText: 'Result: undefined' }).waitFor();
    await page.getByLabel('Routing query').fill("level = 'critical' AND (");
    await page.getByRole('button', { name: 'Test route' }).click();
    await page.locator('#route-test-errors li').filter({ hasText: /line 1, column \d+/ }).waitFor();
    await look('routing-route-test');
    // Nothing was saved by testing.
    assert.equal((await routingOf()).routes![0]!.condition, "level = 'critical'");
  });

  test('Enrich messages adds and removes an enrichment (markup shown as text); the fallback route toggles; a route is edited and deleted; an endpoint in use is refused deletion', async () => {
    await page.goto(`${base}#/hub/routing/enrich`);
    await page.getByLabel('Key', { exact: true }).fill('site');
    await page.getByLabel('Value', { exact: true }).fill('<img src=x onerror=alert(1)>');
    await page.getByRole('checkbox', { name: 'eh-key' }).check();
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('cell', { name: '<img src=x onerror=alert(1)>' }).waitFor();
    assert.equal(await page.locator('#main img').count(), 0);
    await look('routing-enrich');
    assert.deepEqual((await routingOf()).enrichments!.map((e) => [e.key, e.value, e.endpointNames]), [['site', '<img src=x onerror=alert(1)>', ['eh-key']]]);
    await page.getByRole('button', { name: 'Remove enrichment site' }).click();
    await page.getByText('No message enrichments.').waitFor();
    assert.deepEqual((await routingOf()).enrichments, []);

    await page.getByRole('link', { name: 'Routes' }).click();
    await page.getByLabel('Enable fallback route').uncheck();
    await page.getByText('Fallback route disabled.').waitFor();
    assert.equal((await routingOf()).fallbackRoute!.isEnabled, false);
    await page.getByLabel('Enable fallback route').check();
    await page.getByText('Fallback route enabled.').waitFor();
    assert.equal((await routingOf()).fallbackRoute!.isEnabled, true);

    // An endpoint a route uses cannot go: ARM's refusal is shown and it stays.
    await page.getByRole('link', { name: 'Custom endpoints' }).click();
    await page.getByRole('link', { name: 'eh-uai', exact: true }).click();
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    await page.locator('#endpoint-error').filter({ hasText: "no endpoint named 'eh-uai'" }).waitFor();
    assert.ok((await routingOf()).endpoints!.eventHubs!.some((e) => e.name === 'eh-uai'));
    // Edit the route (disable it), then delete it, then the endpoint.
    await page.getByRole('link', { name: 'Routes' }).click();
    await page.getByRole('link', { name: 'critical' }).click();
    await page.getByLabel('Disable').check();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('button', { name: 'Delete route critical' }).waitFor();
    assert.equal((await routingOf()).routes![0]!.isEnabled, false);
    await page.getByRole('button', { name: 'Delete route critical' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    await page.getByText('No routes').waitFor();
    assert.deepEqual((await routingOf()).routes, []);
    await page.getByRole('link', { name: 'Custom endpoints' }).click();
    await page.getByRole('link', { name: 'eh-uai', exact: true }).click();
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    await endpointRow('eh-key').waitFor();
    assert.deepEqual((await routingOf()).endpoints!.eventHubs!.map((e) => e.name), ['eh-key']);
  });

  test('File upload settings saved in the portal: uploadToBlob lands in the embedded storage with a notification', async () => {
    // As in Azure, the container is one that exists in the account (the portal's picker lists them).
    const blobs = BlobServiceClient.fromConnectionString((await t.hub.info()).storageConnectionString);
    await blobs.getContainerClient('portal-uploads').createIfNotExists();
    // A Storage custom endpoint with its storage options (the same account).
    await page.goto(`${base}#/hub/routing/endpoints`);
    await page.getByRole('button', { name: 'Add Storage endpoint' }).click();
    assert.equal(await page.getByLabel('Endpoint type').inputValue(), 'storageContainers');
    await page.getByLabel('Endpoint name').fill('st-portal');
    await page.getByLabel('Connection string').fill((await t.hub.info()).storageConnectionString);
    await page.getByLabel('Container name').fill('routed-blobs');
    await page.getByLabel('Encoding').selectOption('json');
    await page.getByLabel('Batch frequency (seconds)').fill('60');
    await page.getByLabel('Chunk size window (MB)').fill('100');
    await look('routing-endpoint-add-storage');
    await page.getByRole('button', { name: 'Create' }).click();
    await endpointRow('st-portal').waitFor();
    const st = (await routingOf()).endpoints!.storageContainers!.find((e) => e.name === 'st-portal')!;
    assert.deepEqual([st.containerName, st.encoding?.toLowerCase(), st.batchFrequencyInSeconds, st.maxChunkSizeInBytes, st.fileNameFormat], ['routed-blobs', 'json', 60, 100 * 1024 * 1024, '{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}']);

    await page.getByRole('link', { name: 'File upload' }).click();
    await page.getByLabel('Container name').fill('portal-uploads');
    await page.getByLabel('On', { exact: true }).check();
    await page.getByLabel('Maximum delivery count').fill('7');
    await page.getByLabel('Lock duration (seconds)').fill('10');
    await page.getByLabel('SAS TTL (hours)').fill('2');
    await look('file-upload');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    const p = (await iot.iotHubResource.get(hubRg, t.hub.config.hubName)).properties!;
    assert.equal(p.enableFileUploadNotifications, true);
    assert.equal(p.storageEndpoints!.$default!.containerName, 'portal-uploads');
    assert.equal(p.storageEndpoints!.$default!.sasTtlAsIso8601, 'PT2H');
    assert.equal(p.messagingEndpoints!.fileNotifications!.maxDeliveryCount, 7);
    // Out of range: ARM's refusal shown, nothing changes.
    await page.getByLabel('Maximum delivery count').fill('500');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#file-upload-error').filter({ hasText: /maxDeliveryCount/ }).waitFor();
    assert.equal((await iot.iotHubResource.get(hubRg, t.hub.config.hubName)).properties!.messagingEndpoints!.fileNotifications!.maxDeliveryCount, 7);

    const service = iothub.Client.fromConnectionString(await t.connectionString('service'));
    const receiver: any = (await service.getFileNotificationReceiver()).result;
    const notifications: any[] = [];
    receiver.on('message', (m: any) => {
      notifications.push(JSON.parse(m.data.toString()));
      receiver.complete(m, () => undefined);
    });
    const d = await createDevice(t, 'uploader');
    const device = Client.fromConnectionString(d.connectionString, Mqtt);
    await device.open();
    try {
      await device.uploadToBlob('from-portal.txt', Readable.from([Buffer.from('uploaded')]), 8);
    } finally {
      await device.close();
    }
    const n = await eventually(() => notifications.find((x) => x.blobName === 'uploader/from-portal.txt'), 10_000);
    assert.match(n.blobUri, /\/portal-uploads\/uploader\/from-portal\.txt$/);
    assert.equal((await blobs.getContainerClient('portal-uploads').getBlobClient('uploader/from-portal.txt').downloadToBuffer()).toString(), 'uploaded');
    await service.close();
  });

  test('Built-in endpoints: Cloud to device messaging saved in the portal is in effect (a device sees the new TTL); out of range is refused', async () => {
    await page.getByRole('link', { name: 'Built-in endpoints' }).click();
    await page.getByText('Cloud to device messaging').waitFor();
    assert.equal(await page.getByLabel('Default TTL (hours)').inputValue(), '1');
    await page.getByLabel('Default TTL (hours)').fill('5');
    await page.getByLabel('Feedback retention time (hours)').fill('12');
    await page.getByLabel('Maximum delivery count').fill('20');
    await look('built-in-endpoints');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    const c2d = (await iot.iotHubResource.get(hubRg, t.hub.config.hubName)).properties!.cloudToDevice!;
    assert.deepEqual(c2d, { maxDeliveryCount: 20, defaultTtlAsIso8601: 'PT5H', feedback: { lockDurationAsIso8601: 'PT1M', ttlAsIso8601: 'PT12H', maxDeliveryCount: 10 } });

    const d = await createDevice(t, 'portal-c2d');
    const device = Client.fromConnectionString(d.connectionString, Mqtt);
    const got = new Promise<any>((resolve) => device.on('message', (m: any) => device.complete(m, () => resolve(m))));
    await device.open();
    const service = iothub.Client.fromConnectionString(await t.connectionString('service'));
    try {
      const sentAt = Date.now();
      await service.send('portal-c2d', new Message('five hours'));
      const lives = new Date((await got).expiryTimeUtc).getTime() - sentAt;
      assert.ok(Math.abs(lives - 5 * 3600_000) < 10_000, `expires ${lives} ms after sending`);
    } finally {
      await device.close();
      await service.close();
    }

    await page.getByLabel('Maximum delivery count').fill('101');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#built-in-endpoints-error').filter({ hasText: /maxDeliveryCount/ }).waitFor();
    assert.equal((await iot.iotHubResource.get(hubRg, t.hub.config.hubName)).properties!.cloudToDevice!.maxDeliveryCount, 20);
    assert.equal(t.hub.cloudToDeviceSettings.current().maxDeliveryCount, 20);
  });

  test('Built-in endpoints: the Event Hub-compatible connection string reads the endpoint; consumer groups are created and deleted, a bad name refused', async () => {
    await page.getByRole('link', { name: 'Built-in endpoints' }).click();
    await page.getByRole('heading', { name: 'Consumer Groups' }).waitFor();
    assert.equal(await page.getByLabel('Shared access policy').inputValue(), 'service');
    const connectionString = await page.getByRole('textbox', { name: 'Event Hub-compatible endpoint' }).inputValue();
    const service = (await t.hub.store.policies.get('service'))!;
    const port = t.hub.ports.amqp === 5671 ? '' : `:${t.hub.ports.amqp}`;
    assert.equal(connectionString, `Endpoint=sb://${t.hub.config.hostName}${port}/;SharedAccessKeyName=service;SharedAccessKey=${service.primaryKey};EntityPath=${t.hub.config.hubName}`);
    await page.getByLabel('Shared access policy').selectOption('iothubowner');
    assert.match(await page.getByRole('textbox', { name: 'Event Hub-compatible endpoint' }).inputValue(), /;SharedAccessKeyName=iothubowner;/);
    // $Default cannot be deleted: no button for it.
    assert.equal(await page.getByRole('button', { name: 'Delete consumer group $Default' }).count(), 0);

    // A name Event Hubs refuses: ARM's message, nothing added.
    await page.getByLabel('Create new consumer group').fill('bad name!');
    await page.getByRole('button', { name: 'Create consumer group' }).click();
    await page.locator('#consumer-groups-error').filter({ hasText: /consumer group name/ }).waitFor();
    const names = async () => (await iot.iotHubResource.listEventHubConsumerGroups(hubRg, t.hub.config.hubName, 'events').byPage().next()).value.map((g: { name: string }) => g.name).sort();
    assert.deepEqual(await names(), ['$Default']);

    await page.getByLabel('Create new consumer group').fill('portal.readers_1');
    await page.getByRole('button', { name: 'Create consumer group' }).click();
    await page.getByRole('button', { name: 'Delete consumer group portal.readers_1' }).waitFor();
    await look('built-in-endpoints-groups');
    assert.deepEqual(await names(), ['$Default', 'portal.readers_1']);

    // The copied connection string and the new group read what a device sends.
    const d = await createDevice(t, 'portal-eh-reader');
    const device = Client.fromConnectionString(d.connectionString, Mqtt);
    await device.open();
    const reader = new EventHubConsumerClient('portal.readers_1', connectionString, { retryOptions: { maxRetries: 1, timeoutInMs: 5000 } });
    try {
      await device.sendEvent(new Message('through the portal string'));
      const got: ReceivedEventData[] = [];
      const sub = reader.subscribe({ processEvents: async (events) => void got.push(...events), processError: async () => undefined }, { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 });
      try {
        await eventually(() => got.find((e) => e.systemProperties?.['iothub-connection-device-id'] === 'portal-eh-reader'), 15_000);
      } finally {
        await sub.close();
      }
    } finally {
      await reader.close();
      await device.close();
    }

    await page.getByRole('button', { name: 'Delete consumer group portal.readers_1' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    await page.getByRole('button', { name: 'Delete consumer group portal.readers_1' }).waitFor({ state: 'detached' });
    assert.deepEqual(await names(), ['$Default']);
  });

  test('Jobs shows an export job with its progress until completed, and a scheduled job with its device counts', async () => {
    const info = await t.hub.info();
    const { sasUri } = await sasContainer(info.storageConnectionString, 'portal-export');
    const registry = iothub.Registry.fromConnectionString(await t.connectionString());
    const job = (await registry.exportDevicesToBlob(sasUri, false)) as any;
    // And a scheduled twin update on one device.
    const jobs = iothub.JobClient.fromConnectionString(await t.connectionString());
    await jobs.scheduleTwinUpdate('portal-twin-job', "deviceId = 'uploader'", { etag: '*', tags: { batch: 'portal' } }, new Date(), 60);
    await page.getByRole('link', { name: 'Jobs' }).click();
    const row = page.locator('#import-export-jobs tr').filter({ hasText: job.jobId });
    await row.filter({ hasText: 'completed' }).waitFor({ timeout: 15_000 });
    assert.equal(await row.getByRole('progressbar').getAttribute('value'), '100');
    assert.match((await row.textContent())!, /export/);
    const scheduled = page.locator('#scheduled-jobs tr').filter({ hasText: 'portal-twin-job' });
    await scheduled.filter({ hasText: 'completed' }).filter({ hasText: '1 (1 / 0 / 0 / 0)' }).waitFor({ timeout: 15_000 });
    assert.match((await scheduled.textContent())!, /scheduleUpdateTwin/);
    await look('jobs');
  });
});

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
