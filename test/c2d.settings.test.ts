import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import device from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import common from 'azure-iot-common';
import { IotHubClient, type IotHubDescription } from '@azure/arm-iothub';
import { serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { connectAmqp } from './support/amqp.js';
import { createDevice, eventually } from './support/devices.js';
import { armEndpoint, defaultGroup, managementCredential, subscriptionId } from './support/arm.js';
import { fleethub } from './support/process.js';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { FEEDBACK_PURGE_SLICE } from '../src/store/sqlite/c2dFeedback.js';
import { Registry } from '../src/hub/registry/registry.js';
import { CloudToDeviceFeedback } from '../src/hub/messaging/feedback.js';
import { HeldCloudToDeviceSettings, defaultCloudToDeviceSettings } from '../src/hub/messaging/cloudToDeviceSettings.js';
import { countTurns } from './support/turns.js';

/** A feedback receiver of its own (azure-iothub), handing each batch to `onBatch` with the message to settle. */
async function feedbackReceiver(t: TestHub, onBatch: (records: any[], msg: any, receiver: any) => void): Promise<{ close(): Promise<void> }> {
  const client = iothub.Client.fromConnectionString(await t.connectionString('service'));
  const receiver = (await client.getFeedbackReceiver()).result as any;
  receiver.on('message', (msg: any) => onBatch(JSON.parse(msg.getData().toString()), msg, receiver));
  return { close: async () => void (await client.close()) };
}

/**
 * The hub resource's `properties.cloudToDevice` in effect: written through ARM (the unmodified
 * @azure/arm-iothub), the CLI and the portal, and acted on by the device queues and the feedback
 * queue as IoT Hub does: the default time to live, the maximum delivery count, and the feedback's
 * lock duration, maximum delivery count and time to live.
 */
describe('cloud-to-device settings of the hub resource, in effect', () => {
  let t: TestHub;
  let arm: IotHubClient;
  let service: iothub.Client;
  let rg: string;
  let hubName: string;
  const update = async (change: (c: NonNullable<NonNullable<IotHubDescription['properties']>['cloudToDevice']>) => void) => {
    const hub = await arm.iotHubResource.get(rg, hubName);
    change(hub.properties!.cloudToDevice!);
    return arm.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, hub, { ifMatch: hub.etag });
  };

  before(async () => {
    t = await startTestHub();
    arm = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    rg = defaultGroup(t);
    hubName = t.hub.config.hubName;
    service = iothub.Client.fromConnectionString(await t.connectionString('service'));
    await service.open();
  });
  after(async () => {
    await service.close();
    await t.close();
  });

  test("a message sent without an expiry lives the hub's defaultTtlAsIso8601 (AMQP and MQTT devices see it)", async () => {
    await update((c) => (c.defaultTtlAsIso8601 = 'PT2H30M'));
    for (const [name, transport] of [['Amqp', deviceAmqp.Amqp], ['Mqtt', deviceMqtt.Mqtt]] as const) {
      const deviceId = `c2d-ttl-${name}`;
      const { connectionString } = await createDevice(t, deviceId);
      const client = device.Client.fromConnectionString(connectionString, transport as any);
      const received = new Promise<any>((resolve) => client.on('message', (m: any) => client.complete(m, () => resolve(m))));
      await client.open();
      try {
        const sentAt = Date.now();
        await service.send(deviceId, new common.Message(`ttl ${name}`));
        const m = await received;
        const lives = new Date(m.expiryTimeUtc).getTime() - sentAt;
        assert.ok(Math.abs(lives - 2.5 * 3600_000) < 10_000, `${name}: expires ${lives} ms after sending`);
      } finally {
        await client.close();
      }
    }
    // A sender's own expiry still wins.
    const { connectionString } = await createDevice(t, 'c2d-ttl-own');
    const client = device.Client.fromConnectionString(connectionString, deviceAmqp.Amqp as any);
    const received = new Promise<any>((resolve) => client.on('message', (m: any) => client.complete(m, () => resolve(m))));
    await client.open();
    try {
      const m = new common.Message('own expiry');
      // The SDK hands expiryTimeUtc to rhea as the AMQP absolute-expiry-time: a number of ms (a Date does not encode).
      m.expiryTimeUtc = Date.now() + 5 * 60_000;
      await service.send('c2d-ttl-own', m);
      const got = await received;
      assert.ok(Math.abs(new Date(got.expiryTimeUtc).getTime() - m.expiryTimeUtc) < 2_000);
    } finally {
      await client.close();
    }
  });

  test("a message abandoned maxDeliveryCount times is dead-lettered; the service gets DeliveryCountExceeded", async () => {
    await update((c) => (c.maxDeliveryCount = 3));
    const { connectionString } = await createDevice(t, 'c2d-max-3');
    const client = device.Client.fromConnectionString(connectionString, deviceAmqp.Amqp as any);
    let deliveries = 0;
    client.on('message', (msg: any) => {
      deliveries++;
      client.abandon(msg, () => undefined);
    });
    const records: any[] = [];
    const feedback = await feedbackReceiver(t, (batch, msg, receiver) => {
      records.push(...batch.filter((r) => r.deviceId === 'c2d-max-3'));
      receiver.complete(msg, () => undefined);
    });
    await client.open();
    try {
      const m = new common.Message('abandoned');
      m.messageId = 'abandoned-3';
      m.ack = 'full';
      await service.send('c2d-max-3', m);
      await eventually(() => records.length > 0, 10_000);
      assert.equal(deliveries, 3);
      assert.deepEqual(records.map((r) => [r.originalMessageId, r.statusCode]), [['abandoned-3', 'DeliveryCountExceeded']]);
      assert.equal(await t.hub.cloudToDevice.queueDepth('c2d-max-3'), 0);
    } finally {
      await client.close();
      await feedback.close();
      await update((c) => (c.maxDeliveryCount = 10));
    }
  });

  test('a feedback batch left unsettled is offered again after the lock duration; abandoned, it is dropped after feedback.maxDeliveryCount', async () => {
    // azure-iothub's feedback receiver accepts each batch as it arrives (rhea's autoaccept), so
    // the lock and the delivery count show with a receiver that settles by itself (as the .NET
    // SDK's CompleteAsync/AbandonAsync do): rhea, with autoaccept off.
    await update((c) => {
      c.feedback!.lockDurationAsIso8601 = 'PT5S';
      c.feedback!.maxDeliveryCount = 2;
    });
    assert.equal(t.hub.cloudToDeviceSettings.current().feedback.lockMs, 5_000);
    const { connectionString } = await createDevice(t, 'c2d-fb-lock');
    const client = device.Client.fromConnectionString(connectionString, deviceAmqp.Amqp as any);
    client.on('message', (msg: any) => client.complete(msg, () => undefined));
    await client.open();
    const amqp = await connectAmqp(t.host, { username: 'iothubowner@sas.root.fleethub', password: await serviceToken(t) });
    const outcomes = () => (t.hub.store.db.prepare("SELECT count(*) AS n FROM c2d_outcomes WHERE device_id = 'c2d-fb-lock'").get() as { n: number }).n;
    try {
      const receiver = await amqp.receiver('/messages/serviceBound/feedback', { autoaccept: false });
      const seen: { at: number; ids: string[]; delivery: any }[] = [];
      receiver.on('message', (ctx: any) => {
        const ids = (JSON.parse(Buffer.from(ctx.message.body.content ?? ctx.message.body).toString()) as any[]).filter((r) => r.deviceId === 'c2d-fb-lock').map((r) => r.originalMessageId);
        seen.push({ at: Date.now(), ids, delivery: ctx.delivery });
      });
      const m = new common.Message('feedback, please');
      m.messageId = 'locked-1';
      m.ack = 'positive';
      await service.send('c2d-fb-lock', m);
      // Neither completed nor abandoned: the lock runs out and the batch comes again.
      await eventually(() => seen.length >= 2, 20_000);
      const gap = seen[1]!.at - seen[0]!.at;
      assert.ok(gap >= 4_500 && gap < 15_000, `offered again after ${gap} ms (lock PT5S; IoT Hub's default is a minute)`);
      assert.deepEqual(seen.map((s) => s.ids), [['locked-1'], ['locked-1']]);
      // Delivered twice: given up on when the second lock ends, not offered a third time.
      await eventually(() => outcomes() === 0, 10_000);
      assert.equal(seen.length, 2);

      // Abandoned (released) twice: dropped after the second; a later record comes alone, and accepted, it is gone.
      const a = new common.Message('abandon my feedback');
      a.messageId = 'abandoned-fb';
      a.ack = 'positive';
      await service.send('c2d-fb-lock', a);
      await eventually(() => seen.length >= 3, 10_000);
      seen[2]!.delivery.release();
      await eventually(() => seen.length >= 4, 10_000);
      seen[3]!.delivery.release();
      await eventually(() => outcomes() === 0, 10_000);
      const later = new common.Message('later');
      later.messageId = 'later';
      later.ack = 'positive';
      await service.send('c2d-fb-lock', later);
      await eventually(() => seen.length >= 5, 10_000);
      seen[4]!.delivery.accept();
      await eventually(() => outcomes() === 0, 10_000);
      assert.deepEqual(seen.slice(2).map((s) => s.ids), [['abandoned-fb'], ['abandoned-fb'], ['later']]);
    } finally {
      await amqp.close();
      await client.close();
      await update((c) => {
        c.feedback!.lockDurationAsIso8601 = 'PT1M';
        c.feedback!.maxDeliveryCount = 10;
      });
    }
  });

  test('an out-of-range setting is refused by ARM and changes nothing in effect', async () => {
    await update((c) => (c.defaultTtlAsIso8601 = 'PT3H'));
    const held = t.hub.cloudToDeviceSettings.current();
    for (const change of [
      (c: any) => (c.maxDeliveryCount = 0),
      (c: any) => (c.defaultTtlAsIso8601 = 'P3D'),
      (c: any) => (c.feedback.lockDurationAsIso8601 = 'PT1S'),
      (c: any) => (c.feedback.ttlAsIso8601 = 'PT30S'),
      (c: any) => (c.feedback.maxDeliveryCount = 101),
    ]) {
      await assert.rejects(update(change), (e: any) => e.statusCode === 400 && e.code === 'InvalidRequestContent');
    }
    assert.deepEqual(t.hub.cloudToDeviceSettings.current(), held);
    assert.equal((await arm.iotHubResource.get(rg, hubName)).properties!.cloudToDevice!.defaultTtlAsIso8601, 'PT3H');
  });

  test('the settings are in effect again after a restart', async () => {
    await update((c) => {
      c.maxDeliveryCount = 7;
      c.feedback!.ttlAsIso8601 = 'PT2H';
    });
    await service.close();
    await t.restart();
    service = iothub.Client.fromConnectionString(await t.connectionString('service'));
    await service.open();
    const s = t.hub.cloudToDeviceSettings.current();
    assert.equal(s.maxDeliveryCount, 7);
    assert.equal(s.feedback.ttlMs, 2 * 3600_000);
    assert.equal(s.defaultTtlMs, 3 * 3600_000);
  });

  test('fleethub hub update takes az iot hub update\'s cloud-to-device options; bad values are refused and change nothing', async () => {
    const cli = (...args: string[]) => fleethub([...args, '--data', t.dataDir]);
    const r = await cli('hub', 'update', '--c2d-ttl', '5', '--cdd', '4', '--feedback-ttl', '6', '--fld', '30', '--fd', '9');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).properties.cloudToDevice, {
      maxDeliveryCount: 4,
      defaultTtlAsIso8601: 'PT5H',
      feedback: { lockDurationAsIso8601: 'PT30S', ttlAsIso8601: 'PT6H', maxDeliveryCount: 9 },
    });
    assert.deepEqual(t.hub.cloudToDeviceSettings.current(), { defaultTtlMs: 5 * 3600_000, maxDeliveryCount: 4, feedback: { ttlMs: 6 * 3600_000, lockMs: 30_000, maxDeliveryCount: 9 } });
    for (const args of [['--c2d-ttl', '49'], ['--c2d-max-delivery-count', '0'], ['--feedback-lock-duration', '4'], ['--feedback-ttl', 'x']]) {
      const bad = await cli('hub', 'update', ...args);
      assert.notEqual(bad.code, 0, args.join(' '));
      assert.match(bad.stderr, new RegExp(args[0]!));
    }
    assert.equal((await arm.iotHubResource.get(rg, hubName)).properties!.cloudToDevice!.maxDeliveryCount, 4);
  });
});

/**
 * Feedback's time to live on real SQLite with a clock the test sets: records older than
 * feedback.ttlAsIso8601 are not offered and are purged by time, in slices with turns between
 * (feedback for a command sent with `ack: full` to a whole fleet ages out at once).
 */
describe('feedback records past their time to live', () => {
  let dir: string;
  let store: SqliteStore;
  let now = 1_700_000_000_000;
  const OLD = FEEDBACK_PURGE_SLICE * 2 + 50;
  const NEW = 20;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-feedback-ttl-'));
    store = openSqliteStore(join(dir, 'hub.db'));
    await new Registry(store.devices, store.modules).putDevice('fb-dev', { deviceId: 'fb-dev' }, undefined);
    const insert = store.db.prepare("INSERT INTO c2d_outcomes (device_id, original_message_id, ack, outcome, enqueued_time, at) VALUES ('fb-dev', ?, 'full', 'Success', ?, ?)");
    store.db.transaction(() => {
      // Older than an hour (the default feedback TTL) by up to a minute; then some within it.
      for (let i = 0; i < OLD; i++) insert.run(`old-${i}`, now - 3_700_000, now - 3_600_001 - (i % 60_000));
      for (let i = 0; i < NEW; i++) insert.run(`new-${i}`, now - 1000, now - 1000 + i);
    })();
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the purge finds them by the outcome time, not by reading every record', () => {
    const plan = store.db.prepare<[], { detail: string }>('EXPLAIN QUERY PLAN SELECT id FROM c2d_outcomes WHERE at <= 1 ORDER BY at LIMIT 10').all();
    assert.ok(plan.some((p) => /c2d_outcomes_by_time/.test(p.detail)), JSON.stringify(plan));
  });

  test('they are not offered to a receiver, and go in slices with turns of the event loop', async () => {
    const settings = new HeldCloudToDeviceSettings(defaultCloudToDeviceSettings());
    const feedback = new CloudToDeviceFeedback(store.cloudToDeviceFeedback, settings, () => now);
    const batch = await feedback.lease();
    assert.deepEqual(batch!.records.map((r) => r.originalMessageId), Array.from({ length: NEW }, (_, i) => `new-${i}`));
    await batch!.settle(false);
    const counting = countTurns();
    const purged = await feedback.expire();
    const turns = counting.stop();
    assert.equal(purged, OLD);
    assert.ok(turns >= 2, `${turns} turns while purging ${OLD}`);
    assert.equal((store.db.prepare('SELECT count(*) AS n FROM c2d_outcomes').get() as { n: number }).n, NEW);
    // The boundary: a record exactly ttl old is past it.
    now += 3_600_000 - 1000;
    assert.equal(await feedback.expire(), 1);
    // A shorter TTL set by the control plane takes effect at the next sweep.
    settings.set({ ...defaultCloudToDeviceSettings(), feedback: { ...defaultCloudToDeviceSettings().feedback, ttlAsIso8601: 'PT1M' } });
    assert.equal(await feedback.lease(), undefined);
    assert.equal(await feedback.expire(), NEW - 1);
  });
});
