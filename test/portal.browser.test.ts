/**
 * The portal in a real browser (Debian's chromium through playwright-core): each flow clicked as a
 * user does and checked through the Azure SDKs; axe-core on every page; keyboard-only reachability.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import deviceSdk from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import symmetricKey from 'azure-iot-security-symmetric-key';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { dpsConnectionString } from './support/dps.js';
import { axeViolations, launchChromium, tabTo, type TestBrowser } from './support/browser.js';
import { findRole } from '../src/identity/roles.js';
import { defaults } from '../src/config/index.js';

const { Client, Message } = deviceSdk as any;
const { Mqtt } = deviceMqtt as any;
const { ProvisioningDeviceClient } = provisioningDevice as any;
const { Http: ProvisioningHttp } = provisioningHttp as any;
const { SymmetricKeySecurityClient } = symmetricKey as any;

describe('portal in chromium', { timeout: 90_000 }, () => {
  let t: TestHub;
  let b: TestBrowser;
  let page: Page;
  let base: string;
  const a11y: Record<string, string[]> = {};

  before(async () => {
    t = await startTestHub({ dps: { ...defaults.dps, retryAfterSeconds: 0 } } as any);
    base = `https://${t.host}/portal/`;
    b = await launchChromium();
    page = await b.context.newPage();
    page.setDefaultTimeout(10_000);
  });
  after(async () => {
    await b?.close();
    await t?.close();
  });

  /** Screenshot and axe-core check of the page now shown. */
  const look = async (name: string) => {
    await page.screenshot({ path: join(b.shots, `${name}.png`), fullPage: true });
    a11y[name] = await axeViolations(page);
    assert.deepEqual(a11y[name], [], `axe-core on ${name}`);
  };
  const signInWith = async (cs: string) => {
    await page.goto(`${base}#/signin`);
    await page.evaluate(() => sessionStorage.clear());
    await page.getByLabel('Connection string', { exact: true }).fill(cs);
    await page.getByRole('button', { name: 'Sign in with the connection string' }).click();
  };

  test('is served from the package, small, with a strict CSP', async () => {
    const res = await fetch(base);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    const size = t.hub.portal!.compressedSize();
    console.log(`portal compressed download: ${size} bytes`);
    assert.ok(size < 300 * 1024, `${size} bytes`);
  });

  test('the one-time sign-in link signs in as the administrator once', async () => {
    const m = (await t.hub.info()).management!;
    // Owner grants no data actions (as in Azure): the administrator also gets IoT Hub Data Contributor.
    const principalId = (await t.hub.identity.principals.get(t.hub.identity.tenancy.administrator.principalId))!.principalId;
    await t.hub.identity.roleAssignments.create({ name: randomUUID(), scope: `/subscriptions/${m.subscriptionId}`, roleDefinitionId: findRole('IoT Hub Data Contributor')!.id, principalId, principalType: 'ServicePrincipal' });
    const link = t.hub.portal!.signInLink(`https://${t.host}`)!;
    await page.goto(link);
    await page.getByText('Signed in: administrator').waitFor();
    await page.locator('#tile-messages').filter({ hasText: /^\d+$/ }).waitFor();
    assert.match((await page.locator('#tile-devices').textContent())!, /^\d+$/);
    await look('hub-overview');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.goto(link);
    await page.locator('#signin-error').filter({ hasText: 'already used' }).waitFor();
    await look('signin');
  });

  test('the client id and secret sign in through the token endpoint; a wrong secret gets Azure AD\'s error', async () => {
    const m = (await t.hub.info()).management!;
    await page.goto(`${base}#/signin`);
    await page.getByLabel('Client ID', { exact: true }).fill(m.clientId);
    await page.getByLabel('Client secret', { exact: true }).fill('wrong');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('.error').filter({ hasText: 'invalid_client' }).waitFor();
    await page.getByLabel('Client secret', { exact: true }).fill(m.clientSecret);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('link', { name: 'Devices' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  test('devices: create (bad id refused), twin saved reaches a connected device, direct method answered, live telemetry', async () => {
    const owner = await t.connectionString();
    await signInWith(owner);
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await look('devices');
    await page.getByRole('button', { name: 'Add Device' }).click();
    await page.getByLabel('Device ID').fill('bad id/<b>');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#main .error').filter({ hasText: /ArgumentInvalid|NotFound|invalid/i }).first().waitFor();
    await look('device-create');
    const registry = iothub.Registry.fromConnectionString(owner);
    assert.equal((await registry.list()).responseBody.length, 0, 'nothing created');
    await page.getByLabel('Device ID').fill('thermostat-1');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'thermostat-1' }).waitFor();
    await look('device');
    const key = await page.getByLabel('Primary key', { exact: true }).inputValue();
    assert.equal(((await registry.get('thermostat-1')).responseBody as any).authentication.symmetricKey.primaryKey, key);

    const client = Client.fromConnectionString(`HostName=${t.host};DeviceId=thermostat-1;SharedAccessKey=${key}`, Mqtt);
    await client.open();
    try {
      const twin = await client.getTwin();
      const desired = new Promise<any>((resolve) => twin.on('properties.desired', (d: any) => d.interval !== undefined && resolve(d)));

      await page.getByRole('link', { name: 'Device twin' }).click();
      const editor = page.getByLabel('Device twin');
      await editor.waitFor();
      await page.waitForFunction(() => (document.querySelector('textarea') as HTMLTextAreaElement)?.value.includes('etag'));
      const text = JSON.parse(await editor.inputValue());
      await editor.fill('{ not json');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.locator('.error').filter({ hasText: 'IotHubFormatError' }).waitFor();
      text.properties.desired = { interval: 5 };
      await editor.fill(JSON.stringify(text));
      // Keyboard only: Tab to Save and press Enter.
      await page.goto(page.url());
      await editor.fill(JSON.stringify(text));
      await tabTo(page, page.getByRole('button', { name: 'Save' }));
      assert.equal((await desired).interval, 5);
      await look('device-twin');
      // Someone else changes the twin meanwhile: the save has a stale etag and gets the hub's PreconditionFailed.
      await registry.updateTwin('thermostat-1', { tags: { owner: 'someone else' } }, '*');
      await editor.fill(JSON.stringify({ ...text, properties: { desired: { interval: 99 } } }));
      await page.getByRole('button', { name: 'Save' }).click();
      await page.locator('.error').filter({ hasText: 'PreconditionFailed' }).waitFor();
      assert.equal(((await registry.getTwin('thermostat-1')).responseBody as any).properties.desired.interval, 5);

      client.onDeviceMethod('reboot', (req: any, res: any) => res.send(200, { rebooted: true, delay: req.payload.delay }));
      await page.getByRole('link', { name: 'Direct method' }).click();
      await page.getByLabel('Method Name').fill('reboot');
      await page.getByLabel('Payload').fill('{ nope');
      await page.getByRole('button', { name: 'Invoke Method' }).click();
      await page.locator('.error').filter({ hasText: 'not valid JSON' }).waitFor();
      await page.getByLabel('Payload').fill('{"delay": 3}');
      await tabTo(page, page.getByRole('button', { name: 'Invoke Method' }));
      await page.locator('#method-result').filter({ hasText: 'rebooted' }).waitFor();
      assert.deepEqual(JSON.parse((await page.locator('#method-result').textContent())!).payload, { rebooted: true, delay: 3 });
      await look('device-method');

      const received = new Promise<any>((resolve) => client.on('message', (msg: any) => { client.complete(msg, () => undefined); resolve(msg); }));
      await page.getByRole('link', { name: 'Message to device' }).click();
      await page.getByLabel('Message Body').fill('hello device');
      await page.getByLabel('Property 1 key').fill('color');
      await page.getByLabel('Property 1 value').fill('blue');
      await page.getByRole('button', { name: 'Send Message' }).click();
      const msg = await received;
      assert.equal(msg.data.toString(), 'hello device');
      assert.equal(msg.properties.getValue('color'), 'blue');
      await look('device-message');

      await page.getByRole('link', { name: 'Module identities' }).click();
      await page.getByRole('heading', { name: /Module identities/ }).waitFor();
      await look('device-modules');

      await page.getByRole('link', { name: 'Telemetry' }).click();
      await page.getByRole('button', { name: 'Start' }).click();
      await page.getByText('Receiving events').waitFor();
      await new Promise((r) => setTimeout(r, 300));
      for (const temperature of [20.5, 21, 23.25]) {
        const m = new Message(JSON.stringify({ temperature, humidity: 40, note: '<img src=x onerror=alert(1)>' }));
        m.properties.add('level', 'critical');
        await client.sendEvent(m);
      }
      await page.locator('#telemetry-rows tr').nth(2).waitFor();
      const first = await page.locator('#telemetry-rows tr').first().textContent();
      assert.match(first!, /23\.25/);
      assert.match(first!, /critical/);
      assert.match(first!, /<img src=x/, 'device data is shown as text');
      assert.equal(await page.locator('#telemetry-rows img').count(), 0);
      assert.equal(await page.locator('#telemetry-chart polyline').count(), 2, 'temperature and humidity charted');
      await look('device-telemetry');
      await page.getByRole('button', { name: 'Stop' }).click();

      await page.getByRole('link', { name: 'Certificates' }).click();
      await page.getByRole('heading', { name: 'Certificates' }).waitFor();
      await look('hub-certificates');
      await page.getByRole('link', { name: 'Shared access policies' }).click();
      await page.getByRole('heading', { name: 'Shared access policies' }).waitFor();
      await look('hub-policies');
    } finally {
      await client.close();
    }
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('link', { name: 'thermostat-1' }).click();
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await assert.rejects(registry.get('thermostat-1'));
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  test('DPS: Manage enrollments adds an individual enrollment that registers a device; a wrong certificate is refused', async () => {
    await signInWith(await dpsConnectionString(t));
    await page.getByRole('link', { name: 'Manage enrollments' }).click();
    await page.getByRole('link', { name: 'Individual enrollments' }).click();
    await look('dps-enrollments');
    await page.getByRole('button', { name: 'Add individual enrollment' }).click();
    await page.getByLabel('Mechanism').selectOption('symmetricKey');
    await page.getByLabel('Registration ID').fill('sensor-7');
    await page.getByLabel('IoT Hub Device ID').fill('sensor-7-device');
    await page.getByLabel('Initial device twin state').fill('{"tags":{"site":"north"},"properties":{"desired":{"mode":"eco"}}}');
    await look('dps-add-individual');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: /sensor-7 \| Enrollment details/ }).waitFor();
    const key = await page.getByLabel('Primary Key', { exact: true }).inputValue();
    const result = await ProvisioningDeviceClient.create(t.host, (await t.hub.info()).dps!.idScope, new ProvisioningHttp(), new SymmetricKeySecurityClient('sensor-7', key)).register();
    assert.equal(result.deviceId, 'sensor-7-device');
    assert.equal(result.assignedHub, t.host);
    const twin = (await iothub.Registry.fromConnectionString(await t.connectionString()).getTwin('sensor-7-device')).responseBody as any;
    assert.equal(twin.tags.site, 'north');
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByRole('cell', { name: 'assigned' }).waitFor();
    await look('dps-enrollment-detail');
    // Edit (not the attestation): bad twin JSON refused, then provisioning status saved.
    await page.getByLabel('Initial device twin state').fill('{');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('.error').filter({ hasText: 'not valid JSON' }).waitFor();
    await page.getByLabel('Initial device twin state').fill('{"tags":{"site":"south"}}');
    await page.getByLabel('Provisioning status').selectOption('disabled');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();

    // A group whose "certificate" is not one: DPS's error next to the certificate field, nothing added.
    await page.getByRole('link', { name: 'Manage enrollments' }).click();
    await page.getByRole('button', { name: 'Add enrollment group' }).click();
    await page.getByLabel('Group name').fill('bad-cert-group');
    await page.getByLabel('Primary Certificate .pem or .cer file').setInputFiles({ name: 'ca.pem', mimeType: 'application/x-pem-file', buffer: Buffer.from('-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n') });
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('.error').filter({ hasText: /certificate/i }).first().waitFor();
    await look('dps-add-group');
    await page.getByRole('link', { name: 'Manage enrollments' }).click();
    await page.getByRole('button', { name: 'Add enrollment group' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'bad-cert-group' }).count(), 0);

    await page.getByRole('link', { name: 'Individual enrollments' }).click();
    await page.getByRole('link', { name: 'sensor-7' }).click();
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Yes' }).click();
    await page.getByRole('button', { name: 'Add individual enrollment' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'sensor-7' }).count(), 0);
    for (const [link, name] of [['Linked IoT hubs', 'dps-linked-hubs'], ['Certificates', 'dps-certificates'], ['Overview', 'dps-overview']] as const) {
      await page.getByRole('link', { name: link }).click();
      await page.getByRole('heading').first().waitFor();
      await look(name);
    }
  });
});
