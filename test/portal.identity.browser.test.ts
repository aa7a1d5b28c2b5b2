/**
 * The portal's identity pages in Chromium (issue 19, part 2): the hub's Identity blade, Managed
 * Identities, Event Hubs / Service Bus namespaces and Access control (IAM), each flow clicked as a
 * user does and checked through the unmodified Azure SDKs (arm-iothub, arm-msi, arm-authorization,
 * ManagedIdentityCredential, EventHubProducerClient); axe-core on every page; one keyboard-only walk.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { decodeJwt } from 'jose';
import { ManagedIdentityCredential } from '@azure/identity';
import { IotHubClient } from '@azure/arm-iothub';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { EventHubProducerClient } from '@azure/event-hubs';
import { startTestHub, type TestHub } from './support/hub.js';
import { axeViolations, launchChromium, tabTo, type TestBrowser } from './support/browser.js';
import { armEndpoint, defaultGroup, managementCredential, subscriptionId } from './support/arm.js';
import { addHostEntry, removeHostEntry } from './support/resolve.js';

const NS = 'portal-ns';
const EH_HOST = `${NS}.servicebus.localhost`;
const noRetry = { retryOptions: { maxRetries: 0, timeoutInMs: 10_000 } };

describe('portal identity, IAM and resources in chromium', { timeout: 150_000 }, () => {
  let t: TestHub;
  let b: TestBrowser;
  let page: Page;
  let rg: string;
  let hubs: IotHubClient;
  let msi: ManagedServiceIdentityClient;
  let auth: AuthorizationManagementClient;
  let ehId: string;

  before(async () => {
    addHostEntry(EH_HOST, '127.0.0.1');
    t = await startTestHub({ extraHostNames: [EH_HOST], eventHubsNamespaces: [{ name: NS, eventHubs: [{ name: 'telemetry', partitionCount: 1 }] }] });
    addHostEntry(EH_HOST, t.host);
    const info = await t.hub.info();
    process.env.IDENTITY_ENDPOINT = info.identityEndpoint!;
    process.env.IDENTITY_HEADER = info.identityHeader!;
    rg = defaultGroup(t);
    hubs = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    msi = new ManagedServiceIdentityClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    auth = new AuthorizationManagementClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    ehId = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.EventHub/namespaces/${NS}/eventhubs/orders`;
    b = await launchChromium();
    page = await b.context.newPage();
    page.setDefaultTimeout(10_000);
    await page.goto(t.hub.portal!.signInLink(`https://${t.host}`)!);
    await page.getByText('Signed in: administrator').waitFor();
  });
  after(async () => {
    delete process.env.IDENTITY_ENDPOINT;
    delete process.env.IDENTITY_HEADER;
    removeHostEntry(EH_HOST);
    await b?.close();
    await t?.close();
  });

  const look = async (name: string) => {
    await page.screenshot({ path: join(b.shots, `${name}.png`), fullPage: true });
    assert.deepEqual(await axeViolations(page), [], `axe-core on ${name}`);
  };
  const nav = (name: string) => page.locator('#nav').getByRole('link', { name, exact: true }).click();

  test('Identity, System assigned: turned on in the portal, the principal exists and gets tokens', async () => {
    await nav('Identity');
    await page.getByRole('heading', { name: /\| Identity$/ }).waitFor();
    await look('hub-identity-system-off');
    await page.getByLabel('On', { exact: true }).check();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    const shown = (await page.locator('#system-principal-id').textContent())!;
    await look('hub-identity-system-on');
    const hub = await hubs.iotHubResource.get(rg, t.hub.config.hubName);
    assert.equal(hub.identity!.type, 'SystemAssigned');
    assert.equal(hub.identity!.principalId, shown);
    assert.ok(await t.hub.identity.principals.get(shown), 'the principal exists');
    const token = await new ManagedIdentityCredential().getToken('https://eventhubs.azure.net/.default');
    assert.equal(decodeJwt(token.token).oid, shown);
  });

  test('Managed Identities: a name with markup gets ARM\'s error as text; created, shown with its ids', async () => {
    await nav('Managed Identities');
    await page.getByRole('heading', { name: 'Managed Identities' }).waitFor();
    await look('managed-identities-empty');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByLabel('Name').fill('<img src=x onerror=alert(1)>');
    await page.getByRole('button', { name: 'Review + create' }).click();
    await page.locator('.error').filter({ hasText: 'InvalidResourceName' }).waitFor();
    assert.match((await page.locator('.error').filter({ hasText: 'InvalidResourceName' }).textContent())!, /<img src=x/);
    assert.equal(await page.locator('#main img').count(), 0);
    await look('managed-identity-create');
    assert.equal((await all(msi.userAssignedIdentities.listByResourceGroup(rg))).length, 0, 'nothing created');
    await page.getByLabel('Name').fill('sender-identity');
    await page.getByRole('button', { name: 'Review + create' }).click();
    await page.getByRole('heading', { name: 'sender-identity | Overview' }).waitFor();
    const uai = await msi.userAssignedIdentities.get(rg, 'sender-identity');
    assert.equal(await page.locator('#identity-client-id').textContent(), uai.clientId);
    assert.equal(await page.locator('#identity-principal-id').textContent(), uai.principalId);
    await look('managed-identity');
    await nav('Managed Identities');
    await page.getByRole('cell', { name: uai.clientId! }).waitFor();
    await look('managed-identities');
  });

  test('Identity, User assigned: added through the picker, attached to the hub', async () => {
    await nav('Identity');
    await page.getByRole('link', { name: 'User assigned' }).click();
    await page.getByRole('button', { name: 'Add user assigned managed identity' }).click();
    await page.getByLabel('User assigned managed identities').selectOption({ label: 'sender-identity' });
    await look('hub-identity-user-add');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('button', { name: 'Remove sender-identity' }).waitFor();
    await look('hub-identity-user');
    const hub = await hubs.iotHubResource.get(rg, t.hub.config.hubName);
    assert.equal(hub.identity!.type, 'SystemAssigned, UserAssigned');
    const uai = await msi.userAssignedIdentities.get(rg, 'sender-identity');
    assert.deepEqual(Object.values(hub.identity!.userAssignedIdentities!).map((x) => x.principalId), [uai.principalId]);
  });

  test('Event hub in a namespace, IAM: Azure Event Hubs Data Sender for the user-assigned identity lets it send; removed again', async () => {
    await nav('Event Hubs namespaces');
    await page.getByRole('heading', { name: 'Event Hubs namespaces' }).waitFor();
    await look('eventhubs-namespaces');
    await page.getByRole('link', { name: NS }).click();
    await page.getByRole('heading', { name: `${NS} | Overview` }).waitFor();
    await look('eventhubs-namespace');
    await page.getByRole('link', { name: 'Event Hubs', exact: true }).click();
    await page.getByLabel('Event Hub name').fill('orders');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('link', { name: 'orders' }).waitFor();
    await look('eventhubs-entities');
    await page.getByRole('link', { name: 'orders' }).click();
    await page.getByRole('heading', { name: 'orders | Event Hub' }).waitFor();
    await look('eventhub');
    await page.locator('#main').getByRole('link', { name: 'Access control (IAM)' }).click();
    await page.getByRole('heading', { name: 'orders | Access control (IAM)' }).waitFor().catch(async (e) => { console.log(await page.locator('#main').textContent()); throw e; });
    await look('iam-eventhub');
    await page.getByRole('button', { name: 'Add role assignment' }).click();
    await page.getByLabel('Role', { exact: true }).selectOption({ label: 'Azure Event Hubs Data Sender' });
    await page.getByLabel('User-assigned managed identity').check();
    await page.getByLabel('Members').selectOption({ label: 'sender-identity' });
    await look('iam-add');
    await page.getByRole('button', { name: 'Review + assign' }).click();
    await page.getByRole('heading', { name: 'Review + assign' }).waitFor();
    await look('iam-review');
    await page.getByRole('button', { name: 'Review + assign' }).click();
    await page.getByRole('cell', { name: 'sender-identity', exact: true }).waitFor();
    assert.equal(await page.getByRole('row').filter({ hasText: 'Azure Event Hubs Data Sender' }).filter({ hasText: 'This resource' }).count(), 1, await page.locator('#main').innerText());
    await look('iam-eventhub-assigned');

    const uai = await msi.userAssignedIdentities.get(rg, 'sender-identity');
    // atScope() lists those at and above the event hub (the administrator's Owner on the subscription too).
    const listed = (await all(auth.roleAssignments.listForScope(ehId, { filter: 'atScope()' }))).filter((a) => a.scope === ehId);
    assert.equal(listed.length, 1, JSON.stringify(listed));
    assert.equal(listed[0]!.principalId, uai.principalId);
    assert.match(listed[0]!.roleDefinitionId!, /2b629674-e913-4c01-ae53-ef4638d8f975$/);
    const producer = new EventHubProducerClient(EH_HOST, 'orders', new ManagedIdentityCredential({ clientId: uai.clientId! }), noRetry);
    try {
      await producer.sendBatch([{ body: 'sent with the role given in the portal' }], { partitionId: '0' });
    } finally {
      await producer.close();
    }

    // Removed in the portal: gone from the page and from ARM.
    await page.getByRole('button', { name: 'Remove Azure Event Hubs Data Sender of sender-identity' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    // The inherited rows are listed all along, before and after: wait for the removed row itself to go.
    await page.getByRole('cell', { name: 'sender-identity', exact: true }).first().waitFor({ state: 'detached' });
    await page.getByText('No role assignments at this scope.').or(page.getByRole('row').filter({ hasText: 'Inherited' }).first()).waitFor();
    assert.equal((await all(auth.roleAssignments.listForScope(ehId, { filter: 'atScope()' }))).filter((a) => a.scope === ehId).length, 0);

    // Assign access to the hub's system-assigned identity: the assignment names the hub's principal.
    await page.getByRole('button', { name: 'Add role assignment' }).click();
    await page.getByLabel('Role', { exact: true }).selectOption({ label: 'Azure Event Hubs Data Sender' });
    await page.getByLabel('System-assigned managed identity (IoT hub)').check();
    await page.getByRole('button', { name: 'Review + assign' }).click();
    await page.getByRole('heading', { name: 'Review + assign' }).waitFor();
    await page.getByRole('button', { name: 'Review + assign' }).click();
    await page.getByRole('cell', { name: 'System-assigned managed identity' }).waitFor();
    const system = (await hubs.iotHubResource.get(rg, t.hub.config.hubName)).identity!.principalId;
    assert.deepEqual((await all(auth.roleAssignments.listForScope(ehId, { filter: 'atScope()' }))).filter((a) => a.scope === ehId).map((a) => a.principalId), [system]);
  });

  test('refusing to turn off an identity in use shows the API\'s reason; nothing changes', async () => {
    const hub = await hubs.iotHubResource.get(rg, t.hub.config.hubName);
    hub.properties!.routing!.endpoints!.eventHubs = [{ name: 'uses-system', authenticationType: 'identityBased', endpointUri: `sb://${EH_HOST}`, entityPath: 'telemetry' }];
    const withEndpoint = await hubs.iotHubResource.beginCreateOrUpdateAndWait(rg, t.hub.config.hubName, hub);
    await nav('Identity');
    await page.getByRole('link', { name: 'System assigned' }).click();
    await page.getByLabel('Off', { exact: true }).check();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    await page.locator('#identity-error').filter({ hasText: /IdentityInUse: .*uses-system/ }).waitFor();
    await look('hub-identity-in-use');
    const after = await hubs.iotHubResource.get(rg, t.hub.config.hubName);
    assert.equal(after.identity!.principalId, withEndpoint.identity!.principalId);
    assert.equal(after.etag, withEndpoint.etag);
    // The user-assigned identity is removed from the hub, and then deleted.
    await page.getByRole('link', { name: 'User assigned' }).click();
    await page.getByRole('button', { name: 'Remove sender-identity' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    await page.getByText('No user assigned managed identities are added to this resource.').waitFor();
    assert.equal((await hubs.iotHubResource.get(rg, t.hub.config.hubName)).identity!.type, 'SystemAssigned');
    await nav('Managed Identities');
    await page.getByRole('button', { name: 'Delete sender-identity' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    await page.getByText('No managed identities to display.').waitFor();
    assert.equal((await all(msi.userAssignedIdentities.listByResourceGroup(rg))).length, 0);
  });

  test('Service Bus: a namespace with a queue and a topic, shared access keys on demand; resource group IAM', async () => {
    await nav('Service Bus namespaces');
    await page.getByRole('heading', { name: 'Service Bus namespaces' }).waitFor();
    await look('servicebus-namespaces-empty');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByLabel('Namespace name').fill('portal-bus');
    await look('servicebus-create');
    await page.getByRole('button', { name: 'Review + create' }).click();
    await page.getByRole('heading', { name: 'portal-bus | Overview' }).waitFor();
    for (const [tab, label, name] of [['Queues', 'Queue name', 'jobs'], ['Topics', 'Topic name', 'alerts']] as const) {
      await page.getByRole('link', { name: tab, exact: true }).click();
      await page.getByLabel(label).fill(name);
      await page.getByRole('button', { name: 'Create' }).click();
      // In the page, exactly: the hub's 'Jobs' in the navigation also matches 'jobs' loosely, and
      // a loose wait passed on it before the queue was even listed (or, seeing both, failed).
      await page.locator('#main').getByRole('link', { name, exact: true }).waitFor();
      await look(`servicebus-${tab.toLowerCase()}`);
    }
    // A queue's own policy (Send), its keys on demand.
    await page.getByRole('link', { name: 'Queues', exact: true }).click();
    await page.locator('#main').getByRole('link', { name: 'jobs', exact: true }).click();
    await page.getByRole('heading', { name: 'jobs | Queue' }).waitFor();
    await look('servicebus-queue');
    await page.locator('#main').getByRole('link', { name: 'Shared access policies' }).click();
    await page.getByLabel('Policy name').fill('sender');
    await page.getByLabel('Send').check();
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('button', { name: 'Show keys of sender' }).click();
    assert.match(await page.getByLabel('Primary connection string', { exact: true }).inputValue(), /SharedAccessKeyName=sender;.*EntityPath=jobs/);
    await look('servicebus-queue-policies');
    await nav('Service Bus namespaces');
    await page.getByRole('link', { name: 'portal-bus' }).click();
    await page.locator('#main').getByRole('link', { name: 'Shared access policies' }).click();
    await page.getByRole('button', { name: 'Show keys of RootManageSharedAccessKey' }).click();
    const cs = await page.getByLabel('Primary connection string', { exact: true }).inputValue();
    assert.match(cs, /^Endpoint=sb:\/\/.*SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=/);
    await look('servicebus-policies');
    await page.locator('#main').getByRole('link', { name: 'Access control (IAM)' }).click();
    await page.getByRole('heading', { name: 'portal-bus | Access control (IAM)' }).waitFor();
    await nav('Resource group access control (IAM)');
    await page.getByRole('heading', { name: /Access control \(IAM\)/ }).waitFor();
    await look('iam-group');
    await nav('Service Bus namespaces');
    await page.getByRole('button', { name: 'Delete portal-bus' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    await page.getByText('No Service Bus namespaces to display.').waitFor();
  });

  test('keyboard only: a user-assigned identity added to the hub and given a role on the hub', async () => {
    await msi.userAssignedIdentities.createOrUpdate(rg, 'keyboard-identity', { location: (await hubs.iotHubResource.get(rg, t.hub.config.hubName)).location });
    await page.goto(`https://${t.host}/portal/#/hub/identity/user`);
    await page.getByRole('button', { name: 'Add user assigned managed identity' }).waitFor();
    await tabTo(page, page.getByRole('button', { name: 'Add user assigned managed identity' }));
    await page.getByLabel('User assigned managed identities').waitFor();
    await page.keyboard.press('Tab');
    await tabTo(page, page.getByRole('button', { name: 'Add', exact: true }));
    await page.getByRole('button', { name: 'Remove keyboard-identity' }).waitFor();
    await tabTo(page, page.locator('#nav').getByRole('link', { name: 'Access control (IAM)', exact: true }));
    await page.getByRole('button', { name: 'Add role assignment' }).waitFor();
    await tabTo(page, page.getByRole('button', { name: 'Add role assignment' }));
    const role = page.getByLabel('Role', { exact: true });
    await role.waitFor();
    await tabTo(page, role, '');
    // A select is chosen from the keyboard by typing the option's name.
    await page.keyboard.type('IoT Hub Data Reader');
    assert.equal(await role.evaluate((s: HTMLSelectElement) => s.selectedOptions[0]!.textContent), 'IoT Hub Data Reader');
    await tabTo(page, page.getByRole('button', { name: 'Review + assign' }));
    await page.getByRole('heading', { name: 'Review + assign' }).waitFor();
    await tabTo(page, page.getByRole('button', { name: 'Review + assign' }));
    await page.getByRole('cell', { name: 'keyboard-identity', exact: true }).waitFor();
    const hubId = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.Devices/IotHubs/${t.hub.config.hubName}`;
    const uai = await msi.userAssignedIdentities.get(rg, 'keyboard-identity');
    const listed = await all(auth.roleAssignments.listForScope(hubId, { filter: `principalId eq '${uai.principalId}'` }));
    assert.equal(listed.length, 1);
    await look('iam-hub-keyboard');
  });
});

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
