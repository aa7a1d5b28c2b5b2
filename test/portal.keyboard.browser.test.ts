/**
 * The portal keyboard-only (Tab / Shift+Tab / Enter / Space / arrows, no mouse click): create a
 * device, save its twin, invoke a direct method that an SDK device answers, send it a cloud-to-device
 * message, delete it with the
 * confirmation answered Yes; add an individual enrollment and delete it; save the File upload
 * settings (as the administrator). Checked through the SDKs; axe-core on the File upload blade.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Locator, Page } from 'playwright-core';
import deviceSdk from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import provisioningService from 'azure-iot-provisioning-service';
import { startTestHub, type TestHub } from './support/hub.js';
import { dpsConnectionString } from './support/dps.js';
import { IotHubClient } from '@azure/arm-iothub';
import { axeViolations, launchChromium, tabTo, type TestBrowser } from './support/browser.js';
import { armEndpoint, managementCredential, subscriptionId } from './support/arm.js';

const { Client } = deviceSdk as any;
const { Mqtt } = deviceMqtt as any;
const { ProvisioningServiceClient } = provisioningService as any;

describe('portal keyboard-only', { timeout: 180_000 }, () => {
  let t: TestHub;
  let b: TestBrowser;
  let page: Page;
  let base: string;

  before(async () => {
    t = await startTestHub();
    base = `https://${t.host}/portal/`;
    b = await launchChromium();
    page = await b.context.newPage();
    page.setDefaultTimeout(10_000);
    // Any mouse press in this file is a bug of the test: recorded, and checked after each test.
    await page.addInitScript(() => document.addEventListener('mousedown', () => { throw new Error('mouse used'); }, true));
    page.on('pageerror', (e) => e.message.includes('mouse used') && mouse.push(e.message));
  });
  const mouse: string[] = [];
  afterEach(() => assert.deepEqual(mouse, [], 'no mouse press'));
  after(async () => {
    await b?.close();
    await t?.close();
  });

  /** Tab to a control and type into it (replacing what it holds, with Ctrl+A). */
  const typeInto = async (target: Locator, value: string) => {
    await tabTo(page, target, '');
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.type(value);
  };
  const focused = () => page.evaluate(() => document.activeElement?.textContent ?? '');
  const signInWith = async (cs: string) => {
    await page.goto(`${base}#/signin`);
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    await typeInto(page.getByLabel('Connection string', { exact: true }), cs);
    await tabTo(page, page.getByRole('button', { name: 'Sign in with the connection string' }));
  };

  test('hub: create a device, save its twin, invoke a method, delete it (Yes)', async () => {
    const owner = await t.connectionString();
    const registry = iothub.Registry.fromConnectionString(owner);
    await signInWith(owner);
    await page.getByRole('heading', { name: /Overview/ }).waitFor();
    await tabTo(page, page.getByRole('link', { name: 'Devices' }));
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await tabTo(page, page.getByRole('button', { name: 'Add Device' }));
    await page.getByRole('heading', { name: 'Create a device' }).waitFor();
    await typeInto(page.getByLabel('Device ID'), 'kb-1');
    // Space on the "Disable" radio, then back with the arrow key: the radios work from the keyboard.
    await tabTo(page, page.getByRole('radio', { name: 'Enable', exact: true }), '');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.getByRole('radio', { name: 'Disable', exact: true }).isChecked(), true);
    await page.keyboard.press('ArrowLeft');
    await tabTo(page, page.getByRole('button', { name: 'Save' }));
    await page.getByRole('heading', { name: 'kb-1' }).waitFor();
    const created = (await registry.get('kb-1')).responseBody as any;
    assert.equal(created.status, 'enabled');

    const client = Client.fromConnectionString(`HostName=${t.host};DeviceId=kb-1;SharedAccessKey=${created.authentication.symmetricKey.primaryKey}`, Mqtt);
    await client.open();
    try {
      const twin = await client.getTwin();
      const desired = new Promise<any>((resolve) => twin.on('properties.desired', (d: any) => d.interval !== undefined && resolve(d)));
      await tabTo(page, page.getByRole('link', { name: 'Device twin' }));
      await page.waitForFunction(() => (document.querySelector('textarea') as HTMLTextAreaElement)?.value.includes('etag'));
      await typeInto(page.getByLabel('Device twin'), '{"tags":{"floor":3},"properties":{"desired":{"interval":7}}}');
      // Save is before the editor: Shift+Tab back to it, then Space.
      for (let i = 0; i < 5 && (await focused()) !== 'Save'; i++) await page.keyboard.press('Shift+Tab');
      assert.equal(await focused(), 'Save');
      await page.keyboard.press('Space');
      assert.equal((await desired).interval, 7);
      assert.equal(((await registry.getTwin('kb-1')).responseBody as any).tags.floor, 3);

      client.onDeviceMethod('reboot', (req: any, res: any) => res.send(200, { rebooted: true, delay: req.payload.delay }));
      await tabTo(page, page.getByRole('link', { name: 'Direct method' }));
      await typeInto(page.getByLabel('Method Name'), 'reboot');
      await typeInto(page.getByLabel('Payload'), '{"delay": 4}');
      await tabTo(page, page.getByRole('button', { name: 'Invoke Method' }));
      await page.locator('#method-result').filter({ hasText: 'rebooted' }).waitFor();
      assert.deepEqual(JSON.parse((await page.locator('#method-result').textContent())!).payload, { rebooted: true, delay: 4 });

      const received = new Promise<any>((resolve) => client.on('message', (msg: any) => { client.complete(msg, () => undefined); resolve(msg); }));
      await tabTo(page, page.getByRole('link', { name: 'Message to device' }));
      await typeInto(page.getByLabel('Message Body'), 'from the keyboard');
      await typeInto(page.getByLabel('Property 1 key'), 'color');
      await page.keyboard.press('Tab');
      await page.keyboard.type('green');
      await tabTo(page, page.getByRole('button', { name: 'Send Message' }));
      const msg = await received;
      assert.equal(msg.data.toString(), 'from the keyboard');
      assert.equal(msg.properties.getValue('color'), 'green');
    } finally {
      await client.close();
    }

    await tabTo(page, page.getByRole('link', { name: 'Device details' }));
    await page.getByRole('button', { name: 'Delete' }).waitFor();
    await tabTo(page, page.getByRole('button', { name: 'Delete' }));
    await page.getByRole('dialog').waitFor();
    assert.equal(await focused(), 'Yes', 'the confirmation opens with Yes focused');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await assert.rejects(registry.get('kb-1'));
  });

  test('DPS: add an individual enrollment (symmetric key) and delete it (Yes)', async () => {
    const cs = await dpsConnectionString(t);
    const service = ProvisioningServiceClient.fromConnectionString(cs);
    await signInWith(cs);
    await page.getByRole('heading', { name: /Overview/ }).waitFor();
    await tabTo(page, page.getByRole('link', { name: 'Manage enrollments' }));
    await tabTo(page, page.getByRole('link', { name: 'Individual enrollments' }));
    await tabTo(page, page.getByRole('button', { name: 'Add individual enrollment' }));
    await page.getByRole('heading', { name: 'Add individual enrollment' }).waitFor();
    // Mechanism: X.509, TPM, Symmetric Key; arrow keys on the focused select.
    await tabTo(page, page.getByLabel('Mechanism'), '');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.getByLabel('Mechanism').inputValue(), 'symmetricKey');
    await page.getByLabel('Auto-generate keys').waitFor({ state: 'visible' });
    await typeInto(page.getByLabel('Registration ID'), 'kb-sensor');
    await typeInto(page.getByLabel('IoT Hub Device ID'), 'kb-sensor-device');
    await tabTo(page, page.getByRole('button', { name: 'Save' }));
    await page.getByRole('heading', { name: /kb-sensor \| Enrollment details/ }).waitFor();
    const e = await service.getIndividualEnrollment('kb-sensor');
    assert.equal(e.responseBody.attestation.type, 'symmetricKey');
    assert.equal(e.responseBody.deviceId, 'kb-sensor-device');

    await tabTo(page, page.getByRole('button', { name: 'Delete' }));
    await page.getByRole('dialog').waitFor();
    assert.equal(await focused(), 'Yes');
    await page.keyboard.press('Space');
    await page.getByRole('button', { name: 'Add individual enrollment' }).waitFor();
    await assert.rejects(service.getIndividualEnrollment('kb-sensor'));
  });

  test('File upload: container, notifications, SAS TTL, delivery count and lock saved; an out-of-range count refused', async () => {
    const iot = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    const hubRg = (await t.hub.info()).management!.resourceGroup;
    const props = async () => (await iot.iotHubResource.get(hubRg, t.hub.config.hubName)).properties!;
    // The administrator's one-time sign-in link: the blade writes the hub through ARM.
    await page.goto(t.hub.portal!.signInLink(`https://${t.host}`)!);
    // (The DPS credential of the test before stays signed in beside it.)
    await page.getByText(/^Signed in: .*administrator/).waitFor();
    await tabTo(page, page.locator('#nav').getByRole('link', { name: 'File upload', exact: true }));
    await page.getByRole('heading', { name: 'File upload' }).waitFor();
    await page.getByLabel('Container name').waitFor();
    assert.equal((await props()).enableFileUploadNotifications, false);
    await typeInto(page.getByLabel('Container name'), 'kb-uploads');
    // Notifications: Tab reaches the checked radio of the group (Off); Space there, then the arrow moves to On.
    await tabTo(page, page.getByRole('radio', { name: 'Off', exact: true }), 'Space');
    await page.keyboard.press('ArrowUp');
    assert.equal(await page.getByRole('radio', { name: 'On', exact: true }).isChecked(), true);
    await typeInto(page.getByLabel('SAS TTL (hours)'), '3');
    await typeInto(page.getByLabel('Default TTL (hours)'), '5');
    await typeInto(page.getByLabel('Maximum delivery count'), '9');
    await typeInto(page.getByLabel('Lock duration (seconds)'), '15');
    assert.deepEqual(await axeViolations(page), [], 'axe-core on the File upload blade');
    await tabTo(page, page.getByRole('button', { name: 'Save' }), 'Space');
    await page.getByText('Saved.').waitFor();
    const p = await props();
    assert.equal(p.enableFileUploadNotifications, true);
    assert.equal(p.storageEndpoints!.$default!.containerName, 'kb-uploads');
    assert.equal(p.storageEndpoints!.$default!.sasTtlAsIso8601, 'PT3H');
    assert.deepEqual([p.messagingEndpoints!.fileNotifications!.ttlAsIso8601, p.messagingEndpoints!.fileNotifications!.maxDeliveryCount, p.messagingEndpoints!.fileNotifications!.lockDurationAsIso8601], ['PT5H', 9, 'PT15S']);

    // Out of range: ARM's refusal shown, nothing changes.
    await typeInto(page.getByLabel('Maximum delivery count'), '500');
    await tabTo(page, page.getByRole('button', { name: 'Save' }));
    await page.locator('#file-upload-error').filter({ hasText: /maxDeliveryCount/ }).waitFor();
    assert.deepEqual(await axeViolations(page), [], 'axe-core with the error shown');
    assert.equal((await props()).messagingEndpoints!.fileNotifications!.maxDeliveryCount, 9);
  });
});
