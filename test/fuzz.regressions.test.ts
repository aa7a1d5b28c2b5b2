/**
 * What `npm run fuzz` found, each pinned by a test over a real socket against a real hub.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestHub, type TestHub } from './support/hub.js';
import { exchange } from '../bench/fuzz/net.js';
import { AMQP_HEADER, SASL_HEADER, encodeFrame, type FrameSpec } from '../bench/fuzz/amqp.js';

describe('fuzz findings', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
  });
  after(() => t.close());

  // Found by the amqp target (a captured azure-iot-device session with one byte inserted): a
  // transfer on a link the hub had not yet given credit was taken anyway, and rhea wrote a line to
  // stderr for each one (a device could flood the hub's console and bypass its flow control).
  test('AMQP: a transfer without link credit detaches the link with link:transfer-limit-exceeded, and nothing is printed', async () => {
    const frames: FrameSpec[] = [
      { kind: 'header', bytes: SASL_HEADER },
      { kind: 'sasl', performative: 'sasl_init', fields: { mechanism: 'ANONYMOUS' } },
      { kind: 'header', bytes: AMQP_HEADER },
      { kind: 'amqp', channel: 0, performative: 'open', fields: { container_id: 'fuzz', hostname: t.host } },
      { kind: 'amqp', channel: 0, performative: 'begin', fields: { next_outgoing_id: 0, incoming_window: 100, outgoing_window: 100 } },
      { kind: 'amqp', channel: 0, performative: 'attach', fields: { name: 'cbs-sender', handle: 0, role: false, source: { address: 'me' }, target: { address: '$cbs' }, initial_delivery_count: 0 } },
      // Sent at once after the attach: the hub has granted no credit yet.
      ...[0, 1, 2].map(
        (n): FrameSpec => ({
          kind: 'amqp',
          channel: 0,
          performative: 'transfer',
          fields: { handle: 0, delivery_id: n, delivery_tag: Buffer.from([n]), message_format: 0, settled: false },
          payload: { message_id: n, reply_to: 'me', application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: t.host }, body: 'x' },
        }),
      ),
    ];
    const printed: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void printed.push(args.map(String).join(' '));
    try {
      const { response } = await exchange(frames.map((f) => encodeFrame(f)!), { host: t.host, port: 5671, tls: true, idleMs: 300, pauseAfter: 2 });
      assert.ok(response.includes('amqp:link:transfer-limit-exceeded'), 'the link is detached with transfer-limit-exceeded');
      assert.ok(!response.includes('amqp:connection:framing-error'), 'the connection itself is not refused');
    } finally {
      console.error = original;
    }
    assert.deepEqual(printed, []);
  });
});
