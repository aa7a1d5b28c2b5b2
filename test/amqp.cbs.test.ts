import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { createSasToken } from '../src/core/sas.js';
import { serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { connectAmqp, linkClosed, type RawAmqp } from './support/amqp.js';

function putToken(c: RawAmqp, audience: string, token: string, type = 'servicebus.windows.net:sastoken') {
  return c.request('$cbs', { application_properties: { operation: 'put-token', type, name: audience }, body: token });
}

describe('AMQP endpoint: TLS, SASL and claims-based security', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
  });
  after(() => t.close());

  test('put-token answers 200 for a valid token and 401 for a bad signature or an expired token', async () => {
    const c = await connectAmqp(t.host);
    try {
      const ok = await putToken(c, t.host, await serviceToken(t));
      assert.equal(ok.application_properties!['status-code'], 200);
      const policy = await t.hub.store.policies.get('service');
      const wrongKey = createSasToken(t.host, Buffer.alloc(32, 7).toString('base64'), Math.floor(Date.now() / 1000) + 60, 'service');
      const bad = await putToken(c, t.host, wrongKey);
      assert.equal(bad.application_properties!['status-code'], 401);
      const expired = createSasToken(t.host, policy!.primaryKey, Math.floor(Date.now() / 1000) - 5, 'service');
      const old = await putToken(c, t.host, expired, 'azure-devices.net:sastoken');
      assert.equal(old.application_properties!['status-code'], 401);
      assert.match(String(old.application_properties!['status-description']), /expired/);
      const op = await c.request('$cbs', { application_properties: { operation: 'delete-token', type: 'servicebus.windows.net:sastoken', name: t.host }, body: 'x' });
      assert.equal(op.application_properties!['status-code'], 400);
    } finally {
      await c.close();
    }
  });

  test('a link to an unknown address is refused with amqp:not-found; the connection stays usable', async () => {
    const c = await connectAmqp(t.host);
    try {
      await assert.rejects(c.receiver('/no/such/node'), (e: any) => e.condition === 'amqp:not-found');
      const ok = await putToken(c, t.host, await serviceToken(t));
      assert.equal(ok.application_properties!['status-code'], 200);
    } finally {
      await c.close();
    }
  });

  test('SASL PLAIN with a SAS token as the password authorizes links without a put-token', async () => {
    const token = await serviceToken(t);
    const c = await connectAmqp(t.host, { username: 'iothubowner@sas.root.fleethub', password: token });
    try {
      const receiver = await c.receiver('fleethub/ConsumerGroups/$Default/Partitions/0');
      assert.ok(receiver.is_open());
    } finally {
      await c.close();
    }
    const bad = await connectAmqp(t.host, { username: 'iothubowner@sas.root.fleethub', password: token.replace(/sig=[^&]+/, 'sig=AAAA') });
    try {
      await assert.rejects(bad.receiver('fleethub/ConsumerGroups/$Default/Partitions/0'), (e: any) => e.condition === 'amqp:unauthorized-access');
    } finally {
      await bad.close().catch(() => undefined);
    }
  });

  test('links need a token: none, or one without the right permission, is refused with amqp:unauthorized-access', async () => {
    const c = await connectAmqp(t.host);
    try {
      await assert.rejects(c.receiver('fleethub/ConsumerGroups/$Default/Partitions/0'), (e: any) => e.condition === 'amqp:unauthorized-access');
      await assert.rejects(c.sender('/messages/devicebound'), (e: any) => e.condition === 'amqp:unauthorized-access');
      const ok = await putToken(c, t.host, await serviceToken(t, 'registryRead'));
      assert.equal(ok.application_properties!['status-code'], 200);
      await assert.rejects(c.sender('/messages/devicebound'), (e: any) => e.condition === 'amqp:unauthorized-access');
      // The connection is still usable after refused links.
      assert.equal((await putToken(c, t.host, await serviceToken(t, 'service'))).application_properties!['status-code'], 200);
      const sender = await c.sender('/messages/devicebound');
      assert.ok(sender.is_open());
    } finally {
      await c.close();
    }
  });

  test('a sending link gets credit only once authorized: a refused one never gets any, an authorized one then has its message settled', async () => {
    // Credit given with the attach let a client send before the hub listened on the link, and that
    // delivery was never settled: under load azure-iothub's Client.send then waited forever.
    const c = await connectAmqp(t.host);
    try {
      assert.equal((await putToken(c, t.host, await serviceToken(t, 'registryRead'))).application_properties!['status-code'], 200);
      const refused = c.connection.open_sender({ target: { address: '/messages/devicebound' } } as never);
      let credited = false;
      refused.on('sendable', () => (credited = true));
      const error = await linkClosed(refused);
      assert.equal(error?.condition, 'amqp:unauthorized-access');
      assert.equal(credited, false, 'the refused link was given no credit');

      assert.equal((await putToken(c, t.host, await serviceToken(t, 'service'))).application_properties!['status-code'], 200);
      const sender = c.connection.open_sender({ target: { address: '/messages/devicebound' } } as never);
      await new Promise((resolve) => sender.once('sendable', resolve));
      const outcome = await new Promise<string>((resolve) => {
        sender.once('accepted', () => resolve('accepted'));
        sender.once('rejected', (ctx) => resolve(String(ctx.delivery?.remote_state?.error?.condition)));
        sender.send({ to: '/devices/no-such-device/messages/devicebound', body: 'x' });
      });
      assert.equal(outcome, 'amqp:not-found', 'the delivery is settled (rejected: unknown device)');
    } finally {
      await c.close();
    }
  });

  test('an expiring token closes the links it authorized unless renewed by a new put-token', async () => {
    const policy = await t.hub.store.policies.get('service');
    const shortToken = (seconds: number) => createSasToken(t.host, policy!.primaryKey, Math.floor(Date.now() / 1000) + seconds, 'service');
    const c = await connectAmqp(t.host);
    const renewed = await connectAmqp(t.host);
    try {
      assert.equal((await putToken(c, t.host, shortToken(2))).application_properties!['status-code'], 200);
      assert.equal((await putToken(renewed, t.host, shortToken(2))).application_properties!['status-code'], 200);
      const expiring = await c.receiver('fleethub/ConsumerGroups/$Default/Partitions/1');
      const kept = await renewed.receiver('fleethub/ConsumerGroups/$Default/Partitions/1');
      const closed = linkClosed(expiring);
      assert.equal((await putToken(renewed, t.host, shortToken(3600))).application_properties!['status-code'], 200);
      const error = await closed;
      assert.equal(error?.condition, 'amqp:unauthorized-access');
      assert.match(String(error?.description), /expired/);
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(kept.is_open(), 'the renewed connection keeps its link');
    } finally {
      await c.close();
      await renewed.close();
    }
  });

  test('a sixth receiver on one partition and consumer group is refused with amqp:resource-limit-exceeded', async () => {
    const c = await connectAmqp(t.host);
    try {
      assert.equal((await putToken(c, t.host, await serviceToken(t, 'service'))).application_properties!['status-code'], 200);
      const address = 'fleethub/ConsumerGroups/$Default/Partitions/2';
      const five = [];
      for (let i = 0; i < 5; i++) five.push(await c.receiver(address));
      await assert.rejects(c.receiver(address), (e: any) => e.condition === 'amqp:resource-limit-exceeded');
      five[0]!.close();
      await linkClosed(five[0]!);
      assert.ok((await c.receiver(address)).is_open(), 'a freed place can be taken again');
    } finally {
      await c.close();
    }
  });

  test('a malformed frame ends that connection only', async () => {
    const good = await connectAmqp(t.host);
    const socket = tlsConnect({ host: t.host, port: 5671 });
    await new Promise((r) => socket.once('secureConnect', r));
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    const closed = new Promise((r) => socket.once('close', r));
    // A valid AMQP header, then a frame whose size field claims less than the frame header itself.
    socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]));
    socket.write(Buffer.from([0, 0, 0, 2, 2, 0, 0, 0]));
    await closed;
    const all = Buffer.concat(received);
    assert.deepEqual(all.subarray(0, 8), Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]), 'the server answered with its AMQP header');
    assert.ok(all.includes('amqp:connection:framing-error'), 'the server closed with amqp:connection:framing-error');
    try {
      const ok = await putToken(good, t.host, await serviceToken(t));
      assert.equal(ok.application_properties!['status-code'], 200);
    } finally {
      await good.close();
    }
  });

  test('stopping the hub does not wait on a silent AMQP peer', async () => {
    const other = await startTestHub();
    const socket = tlsConnect({ host: other.host, port: 5671 });
    await new Promise((r) => socket.once('secureConnect', r));
    socket.on('error', () => undefined);
    const closed = new Promise((r) => socket.once('close', r));
    const started = Date.now();
    await other.close();
    assert.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`);
    await closed;
  });
});
