import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import rhea, { type Message, type Sender } from 'rhea';
import { startTestHub, type TestHub } from './support/hub.js';
import { connectAmqp, linksAcrossSasExpiry, namespaceSas, putToken, type RawAmqp } from './support/amqp.js';
import { rawMessageBytes } from '../src/protocols/amqp/rawMessage.js';
import { decodeEvent } from '../src/protocols/amqp/eventhub/typedValues.js';

const { types } = rhea;
const NAMESPACE = 'wire-test-ns';
const HOST = `${NAMESPACE}.servicebus.localhost`;

const sas = namespaceSas;

/** The outcome of one delivery: 'accepted', or the rejection's error. */
function outcome(sender: Sender, send: () => void): Promise<'accepted' | { condition?: string; description?: string }> {
  return new Promise((resolve) => {
    const done = (ctx: { delivery?: { remote_state?: { error?: { condition?: string; description?: string } } } }, accepted: boolean) => {
      sender.removeAllListeners('accepted');
      sender.removeAllListeners('rejected');
      resolve(accepted ? 'accepted' : ctx.delivery?.remote_state?.error ?? {});
    };
    sender.once('accepted', (ctx) => done(ctx as never, true));
    sender.once('rejected', (ctx) => done(ctx as never, false));
    send();
  });
}

/** The condition a link is closed with (the server refusing it), or 'open' when it stays open 5 s. */
function refusal(c: RawAmqp, kind: 'sender' | 'receiver', address: string): Promise<string | undefined> {
  const link = kind === 'sender' ? c.connection.open_sender({ target: { address } }) : c.connection.open_receiver({ source: { address } });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('open'), 5000);
    link.once(`${kind}_close`, () => {
      clearTimeout(timer);
      resolve((link.error as { condition?: string } | undefined)?.condition);
    });
  });
}

function sendable(sender: Sender): Promise<void> {
  return sender.sendable() ? Promise.resolve() : new Promise((r) => sender.once('sendable', () => r()));
}

describe('local Event Hubs namespace on the wire: host names, exact types, bad input', () => {
  let t: TestHub;
  const key = (rule: string, eventHub?: string) => t.hub.eventHubs!.namespaces.listAuthorizationRules(NAMESPACE, eventHub).find((r) => r.name === rule)!.primaryKey;
  /** A plain AMQP connection (loopback) whose open frame names the namespace's host. */
  const connect = () => connectAmqp(t.host, { tls: false, hostname: HOST } as never);

  before(async () => {
    t = await startTestHub({
      eventHubsNamespaces: [{ name: NAMESPACE, authorizationRules: [{ name: 'listen', rights: ['Listen'] }], eventHubs: [{ name: 'orders', partitionCount: 2 }] }],
    });
  });
  after(async () => {
    await t?.close();
  });

  test('the open frame host name selects the namespace; a token it did not sign is refused at put-token', async () => {
    const c = await connect();
    try {
      const foreign = await putToken(c, `sb://${HOST}/orders`, sas(`sb://${HOST}/orders`, 'RootManageSharedAccessKey', Buffer.alloc(32, 3).toString('base64')));
      assert.equal(foreign.application_properties!['status-code'], 401);
      const ok = await putToken(c, `sb://${HOST}/orders`, sas(`sb://${HOST}/orders`, 'RootManageSharedAccessKey', key('RootManageSharedAccessKey')));
      assert.equal(ok.application_properties!['status-code'], 200);
      const sender = await c.sender('orders/Partitions/1');
      assert.equal(await outcome(sender, () => sender.send({ body: rhea.message.data_section(Buffer.from('hello')) })), 'accepted');
    } finally {
      await c.close();
    }
  });

  test('exact AMQP types of application properties and message annotations go back out as they came', async () => {
    const c = await connect();
    try {
      await putToken(c, `sb://${HOST}/`, sas(`sb://${HOST}/`, 'RootManageSharedAccessKey', key('RootManageSharedAccessKey')));
      const sender = await c.sender('orders/Partitions/0');
      await sendable(sender);
      const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';
      const sent: Message = {
        message_id: Buffer.from(rhea.string_to_uuid(uuid)) as never,
        body: { a: 1 },
        application_properties: {
          i: types.wrap_int(5),
          l: types.wrap_long(7),
          big: types.wrap_long(Buffer.from('0020000100000001', 'hex') as never),
          ub: types.wrap_ubyte(200),
          f: types.wrap_float(0.5),
          ts: types.wrap_timestamp(1_700_000_000_123),
          sym: types.wrap_symbol('sym'),
          bin: types.wrap_binary(Buffer.from([9, 8])),
          s: 'text',
          no: null,
        } as never,
        message_annotations: { 'x-custom': types.wrap_short(-3) } as never,
      };
      assert.equal(await outcome(sender, () => sender.send(sent)), 'accepted');
      // Listening from the start: the event comes as soon as the link is attached.
      const receiver = c.connection.open_receiver({ source: { address: 'orders/ConsumerGroups/$Default/Partitions/0' } });
      const message = await new Promise<Message>((resolve, reject) => {
        receiver.once('message', (ctx) => resolve(ctx.message!));
        receiver.once('receiver_close', () => reject(receiver.error ?? new Error('receiver closed')));
        setTimeout(() => reject(new Error('no event within 10 s')), 10_000).unref();
      });
      const decoded = decodeEvent(rawMessageBytes(message)!);
      assert.deepEqual(decoded.properties, {
        i: { type: 'int', value: 5 },
        l: { type: 'long', value: 7 },
        big: { type: 'long', value: '9007203549708289' },
        ub: { type: 'ubyte', value: 200 },
        f: { type: 'float', value: 0.5 },
        ts: new Date(1_700_000_000_123),
        sym: { type: 'symbol', value: 'sym' },
        bin: Buffer.from([9, 8]),
        s: 'text',
        no: null,
      });
      assert.deepEqual(decoded.systemProperties['x-custom'], { type: 'short', value: -3 });
      assert.deepEqual(decoded.systemProperties['message-id'], { type: 'uuid', value: uuid });
      assert.deepEqual(message.body, { a: 1 }, 'an amqp-value body stays an amqp-value');
      assert.equal(typeof decoded.systemProperties['x-opt-sequence-number'], 'object');
    } finally {
      await c.close();
    }
  });

  test('events go out settled, as Event Hubs sends them (no dispositions back); a receiver that asks for unsettled transfers gets them', async () => {
    const c = await connect();
    try {
      await putToken(c, `sb://${HOST}/`, sas(`sb://${HOST}/`, 'RootManageSharedAccessKey', key('RootManageSharedAccessKey')));
      const sender = await c.sender('orders/Partitions/1');
      await sendable(sender);
      assert.equal(await outcome(sender, () => sender.send({ body: rhea.message.data_section(Buffer.from('settle-me')) })), 'accepted');
      const first = (options: Record<string, unknown>) => {
        const receiver = c.connection.open_receiver({ source: { address: 'orders/ConsumerGroups/$Default/Partitions/1' }, autoaccept: false, ...options } as never);
        return new Promise<{ remote_settled: boolean }>((resolve, reject) => {
          receiver.once('message', (ctx) => resolve(ctx.delivery as never));
          receiver.once('receiver_close', () => reject(receiver.error ?? new Error('receiver closed')));
          setTimeout(() => reject(new Error('no event within 10 s')), 10_000).unref();
        });
      };
      assert.equal((await first({})).remote_settled, true, 'mixed (the SDK): settled');
      assert.equal((await first({ snd_settle_mode: 1 })).remote_settled, true, 'settled (the .NET SDK): settled');
      assert.equal((await first({ snd_settle_mode: 0 })).remote_settled, false, 'unsettled: unsettled');
    } finally {
      await c.close();
    }
  });

  test('bad input: oversize, malformed batches, unknown entities and missing claims get AMQP errors; nothing is written; the process stays up', async () => {
    const log = t.hub.store.eventLogs.entity(`${NAMESPACE}/orders`);
    const count = async () => (await log.partitionInfo(0)).lastSequenceNumber + (await log.partitionInfo(1)).lastSequenceNumber;
    const before = await count();
    const c = await connect();
    try {
      await putToken(c, `sb://${HOST}/`, sas(`sb://${HOST}/`, 'RootManageSharedAccessKey', key('RootManageSharedAccessKey')));
      const sender = await c.sender('orders');
      await sendable(sender);
      const big = await outcome(sender, () => sender.send({ body: rhea.message.data_section(Buffer.alloc(1024 * 1024 + 10, 1)) }));
      assert.equal(typeof big === 'object' && big.condition, 'amqp:link:message-size-exceeded');
      const garbage = await outcome(sender, () => (sender as unknown as { send(m: Buffer, tag: undefined, format: number): void }).send(Buffer.from([0x00, 0x53, 0x75, 0xb0, 0xff, 0xff]), undefined, 0x80013700));
      assert.equal(typeof garbage === 'object' && garbage.condition, 'com.microsoft:argument-error');
      assert.equal(await count(), before, 'nothing was written');
      assert.equal(await outcome(sender, () => sender.send({ body: rhea.message.data_section(Buffer.from('still up')) })), 'accepted');
      assert.equal(await refusal(c, 'sender', 'nope'), 'amqp:not-found');
      assert.equal(await refusal(c, 'sender', 'orders/Partitions/7'), 'amqp:not-found');
      assert.equal(await refusal(c, 'receiver', 'orders/ConsumerGroups/nope/Partitions/0'), 'amqp:not-found');
      const unknown = await c.request('$management', { application_properties: { operation: 'READ', name: 'nope', type: 'com.microsoft:eventhub' }, body: '' });
      assert.equal(unknown.application_properties!['status-code'], 404);
    } finally {
      await c.close();
    }
    const listener = await connect();
    try {
      const put = await putToken(listener, `sb://${HOST}/orders`, sas(`sb://${HOST}/orders`, 'listen', key('listen')));
      assert.equal(put.application_properties!['status-code'], 200);
      assert.equal(await refusal(listener, 'sender', 'orders'), 'amqp:unauthorized-access');
      const receiver = await listener.receiver('orders/ConsumerGroups/$Default/Partitions/0');
      assert.ok(receiver.is_open(), 'Listen receives');
    } finally {
      await listener.close();
    }
    const none = await connect();
    try {
      assert.equal(await refusal(none, 'receiver', 'orders/ConsumerGroups/$Default/Partitions/0'), 'amqp:unauthorized-access');
    } finally {
      await none.close();
    }
    assert.equal(await count(), before + 1);
  });
  // The Event Hubs SDKs put a new token on $cbs before the one a link was authorized with expires.
  test('a link lives as long as a token allows it: a renewal (put-token again) keeps it past the first token; without one it is closed with amqp:unauthorized-access', async () => {
    const audience = `sb://${HOST}/orders`;
    const { lapsed, renewed } = await linksAcrossSasExpiry(connect, audience, (ttl) => sas(audience, 'RootManageSharedAccessKey', key('RootManageSharedAccessKey'), ttl), 'orders/ConsumerGroups/$default/Partitions/0');
    assert.equal(lapsed !== 'still open' && lapsed.condition, 'amqp:unauthorized-access', 'the link whose token lapsed is closed');
    assert.match(lapsed !== 'still open' ? lapsed.description ?? '' : '', /ExpiredToken/);
    assert.equal(renewed, 'open', 'the renewed one is not');
  });
});
