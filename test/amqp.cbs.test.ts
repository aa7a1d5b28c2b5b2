import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { createSasToken } from '../src/core/sas.js';
import { serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { connectAmqp, type RawAmqp } from './support/amqp.js';

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

  test('SASL PLAIN with a SAS token as the password authenticates the connection', async () => {
    const token = await serviceToken(t);
    const c = await connectAmqp(t.host, { username: 'iothubowner@sas.root.fleethub', password: token });
    try {
      // The connection can read the built-in endpoint's $management without a put-token.
      assert.ok(c.connection.is_open());
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
    try {
      const ok = await putToken(good, t.host, await serviceToken(t));
      assert.equal(ok.application_properties!['status-code'], 200);
    } finally {
      await good.close();
    }
  });
});
