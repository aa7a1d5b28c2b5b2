/**
 * What `npm run fuzz` found, each pinned by a test over a real socket against a real hub.
 */
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestHub, type TestHub } from './support/hub.js';
import { exchange } from '../bench/fuzz/net.js';
import { AMQP_HEADER, SASL_HEADER, encodeFrame, type FrameSpec } from '../bench/fuzz/amqp.js';

const rhea = createRequire(import.meta.url);
const frames = rhea('rhea/lib/frames.js');
const types = rhea('rhea/lib/types.js');

/** SASL ANONYMOUS, then an open frame with `open` fields. */
function opening(host: string, open: Record<string, unknown> = {}): FrameSpec[] {
  return [
    { kind: 'header', bytes: SASL_HEADER },
    { kind: 'sasl', performative: 'sasl_init', fields: { mechanism: 'ANONYMOUS' } },
    { kind: 'header', bytes: AMQP_HEADER },
    { kind: 'amqp', channel: 0, performative: 'open', fields: { container_id: 'fuzz', hostname: host, ...open } },
  ];
}

/** Runs `fn` with console.error/warn and process warnings collected instead of printed. */
async function printedDuring(fn: () => Promise<void>): Promise<string[]> {
  const printed: string[] = [];
  const { error, warn } = console;
  console.error = console.warn = (...args: unknown[]) => void printed.push(args.map(String).join(' '));
  const onWarning = (w: Error) => printed.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    await fn();
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    Object.assign(console, { error, warn });
    process.off('warning', onWarning);
  }
  return printed;
}

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
    const session: FrameSpec[] = [
      ...opening(t.host),
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
    const printed = await printedDuring(async () => {
      const { response } = await exchange(session.map((f) => encodeFrame(f)!), { host: t.host, port: 5671, tls: true, idleMs: 300, pauseAfter: 2 });
      assert.ok(response.includes('amqp:link:transfer-limit-exceeded'), 'the link is detached with transfer-limit-exceeded');
      assert.ok(!response.includes('amqp:connection:framing-error'), 'the connection itself is not refused');
    });
    assert.deepEqual(printed, []);
  });

  // Found by the amqp target: the hub heartbeats every half of the peer's idle time-out, so an open
  // frame asking for 1 ms (or for 0xFFFFFFFF, past Node's largest timer, which falls back to 1 ms
  // with a TimeoutOverflowWarning) had the hub write an empty frame every millisecond or less.
  for (const idle of [1, 0xffffffff]) {
    test(`AMQP: an open frame with idle-time-out ${idle} does not make the hub flood the connection with heartbeats`, async () => {
      let response: Buffer = Buffer.alloc(0);
      const printed = await printedDuring(async () => {
        ({ response } = await exchange(opening(t.host, { idle_time_out: idle }).map((f) => encodeFrame(f)!), { host: t.host, port: 5671, tls: true, idleMs: 1000, maxMs: 1200, pauseAfter: 2 }));
      });
      // SASL mechanisms and outcome, the AMQP header and the open frame: about 150 bytes; a flood is kilobytes.
      assert.ok(response.length < 400, `the hub sent ${response.length} bytes in a second`);
      assert.ok(response.includes('AMQP\x00\x01\x00\x00', 0, 'latin1'), 'the connection was opened');
      assert.deepEqual(printed, []);
    });
  }

  // Found by the amqp target: rhea printed "Unknown terminus" for each attach whose source had a
  // descriptor it did not know. Such an attach is refused (no address) and nothing is printed.
  test('AMQP: an attach with an unknown terminus is refused as not found, and nothing is printed', async () => {
    const unknown = types.described(types.wrap_ulong(0x2b), types.wrap_list([types.wrap_string('/devices/x/messages/events')]));
    const attach = frames.write_frame(frames.amqp_frame(0, frames.attach({ name: 'odd', handle: 0, role: true, source: unknown, target: unknown })));
    let response: Buffer = Buffer.alloc(0);
    const printed = await printedDuring(async () => {
      const begin = encodeFrame({ kind: 'amqp', channel: 0, performative: 'begin', fields: { next_outgoing_id: 0, incoming_window: 100, outgoing_window: 100 } })!;
      ({ response } = await exchange([...opening(t.host).map((f) => encodeFrame(f)!), begin, attach], { host: t.host, port: 5671, tls: true, idleMs: 300, pauseAfter: 2 }));
    });
    assert.ok(response.includes('amqp:not-found'), 'the link is refused');
    assert.deepEqual(printed, []);
  });
});
