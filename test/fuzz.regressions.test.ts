/**
 * What `npm run fuzz` found, each pinned by a test over a real socket against a real hub.
 */
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { exchange } from '../bench/fuzz/net.js';
import { AMQP_HEADER, SASL_HEADER, encodeFrame, type FrameSpec } from '../bench/fuzz/amqp.js';

const rhea = createRequire(import.meta.url);
const frames_ = rhea('rhea/lib/frames.js');
const frames = frames_;
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

  // Found reading the amqp target's sessions: they send the SASL init, then wait for the hub's
  // answer before the rest, because all in one write the hub never answered the open. A client may
  // pipeline its AMQP header and open behind the SASL init (Qpid Proton does): the hub opens.
  for (const [name, mechanism] of [['ANONYMOUS', { mechanism: 'ANONYMOUS' }], ['PLAIN (a SAS token)', undefined]] as const) {
    test(`AMQP: an AMQP header and open frame pipelined right behind the SASL init (${name}) are answered`, async () => {
      const frames = opening(t.host);
      if (!mechanism) {
        const token = await serviceToken(t);
        frames[1] = { kind: 'sasl', performative: 'sasl_init', fields: { mechanism: 'PLAIN', initial_response: Buffer.from(`\0iothubowner@sas.root.${t.host}\0${token}`) } };
      }
      const { response } = await exchange(frames.map((f) => encodeFrame(f)!), { host: t.host, port: 5671, tls: true, idleMs: 500, maxMs: 3000 });
      assert.ok(response.includes('AMQP\x00\x01\x00\x00', 0, 'latin1'), 'the AMQP header was answered');
      // The open performative's descriptor (0x10) follows the AMQP header.
      const afterHeader = response.subarray(response.indexOf('AMQP\x00\x01\x00\x00', 0, 'latin1') + 8);
      assert.ok(afterHeader.includes(Buffer.from([0x00, 0x53, 0x10])), 'the open frame was answered');
    });
  }

  /** SASL ANONYMOUS, open, begin, and a sender and a receiver link on $cbs (the hub grants the sender credit). */
  function cbsLinks(host: string): FrameSpec[] {
    return [
      ...opening(host),
      { kind: 'amqp', channel: 0, performative: 'begin', fields: { next_outgoing_id: 0, incoming_window: 100, outgoing_window: 100 } },
      { kind: 'amqp', channel: 0, performative: 'attach', fields: { name: 'cbs-sender', handle: 0, role: false, source: { address: 'me' }, target: { address: '$cbs' }, initial_delivery_count: 0 } },
      { kind: 'amqp', channel: 0, performative: 'attach', fields: { name: 'cbs-receiver', handle: 1, role: true, source: { address: '$cbs' }, target: { address: 'me' } } },
      { kind: 'amqp', channel: 0, performative: 'flow', fields: { next_incoming_id: 0, incoming_window: 100, next_outgoing_id: 0, outgoing_window: 100, handle: 1, delivery_count: 0, link_credit: 10 } },
    ];
  }
  const putToken = (host: string, n: number, payload?: Uint8Array): FrameSpec => ({
    kind: 'amqp',
    channel: 0,
    performative: 'transfer',
    fields: { handle: 0, delivery_id: n, delivery_tag: Buffer.from([n]), message_format: 0, settled: false },
    payload: payload ?? { message_id: n, reply_to: 'me', application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: host }, body: 'x' },
  });
  const send = (frames: FrameSpec[], stops: number[]) =>
    exchange(frames.map((f) => encodeFrame(f)!), { host: t.host, port: 5671, tls: true, idleMs: 300, maxMs: 3000, pauseAfter: stops });

  // Found by the amqp target's link sessions (a flow with drain set and link-credit 0x7FFFFFFF on a
  // link the device sends on): rhea took the device's link-credit as the hub's own, so a device could
  // raise its credit past the hub's flow control, and printed "received flow with drain set, but non
  // zero credit". A drain leaves the hub's credit at 0: the next transfer is over the limit.
  test('AMQP: a sender\'s drain with link-credit does not give it credit, and nothing is printed', async () => {
    const frames = cbsLinks(t.host);
    const drain: FrameSpec = { kind: 'amqp', channel: 0, performative: 'flow', fields: { next_incoming_id: 0, incoming_window: 100, next_outgoing_id: 0, outgoing_window: 100, handle: 0, delivery_count: 0, link_credit: 0x7fffffff, drain: true } };
    let response: Buffer = Buffer.alloc(0);
    const printed = await printedDuring(async () => {
      ({ response } = await send([...frames, drain, putToken(t.host, 0)], [2, frames.length, frames.length + 1]));
    });
    assert.ok(response.includes('amqp:link:transfer-limit-exceeded'), 'the transfer after the drain is over the credit');
    assert.deepEqual(printed, []);
  });

  // Found by the 10-minute run of the amqp target (a device-authenticated session that attached
  // its events address as a receiver, then sent transfers on that link): rhea took a transfer on a
  // link the hub sends on as a message, spending the credit the peer had given the hub, and
  // printed "Received transfer when credit was 0" when there was none. The link is detached.
  for (const credit of [0, 10]) {
    test(`AMQP: a transfer on a link the hub sends on (peer credit ${credit}) detaches it with amqp:not-allowed, and nothing is printed`, async () => {
      const frames = cbsLinks(t.host);
      frames[frames.length - 1] = { ...frames[frames.length - 1]!, fields: { ...(frames[frames.length - 1] as { fields: Record<string, unknown> }).fields, link_credit: credit } } as FrameSpec;
      const wrongWay: FrameSpec = { ...putToken(t.host, 0), fields: { handle: 1, delivery_id: 0, delivery_tag: Buffer.from([0]), message_format: 0, settled: false } } as FrameSpec;
      let response: Buffer = Buffer.alloc(0);
      const printed = await printedDuring(async () => {
        ({ response } = await send([...frames, wrongWay, putToken(t.host, 1)], [2, frames.length]));
      });
      assert.ok(response.includes('amqp:not-allowed'), 'the link is detached');
      assert.ok(!response.includes('amqp:connection:framing-error'), 'the connection carries on');
      assert.deepEqual(printed, []);
    });
  }

  // Found by the amqp target (a disposition whose state has descriptor 0x30): rhea printed
  // "unrecognised outcome" for each. Taken silently; the connection carries on.
  test('AMQP: a disposition with an outcome AMQP does not define is taken silently', async () => {
    const frames = cbsLinks(t.host);
    const odd = frames_.write_frame(frames_.amqp_frame(0, frames_.disposition({ role: true, first: 0, last: 3, settled: false, state: types.described(types.wrap_ulong(0x30), types.wrap_list([])) })));
    let response: Buffer = Buffer.alloc(0);
    const printed = await printedDuring(async () => {
      const bytes = [...frames, putToken(t.host, 0)].map((f) => encodeFrame(f)!);
      ({ response } = await exchange([...bytes, odd, encodeFrame(putToken(t.host, 1))!], { host: t.host, port: 5671, tls: true, idleMs: 300, maxMs: 3000, pauseAfter: [2, frames.length, frames.length + 1] }));
    });
    assert.ok(!response.includes('amqp:internal-error'));
    assert.deepEqual(printed, []);
  });

  // Found by the amqp target (a captured SDK session with bytes flipped): rhea printed "expected
  // described message section" (or "did not recognise message section") for each section of a
  // message that is not one of AMQP's. Such sections are dropped silently; the rest is the message.
  test('AMQP: message sections that are not AMQP sections are dropped silently', async () => {
    const message = rhea('rhea/lib/message.js');
    const good = message.encode({ message_id: 7, reply_to: 'me', application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: t.host }, body: 'x' });
    const unknownSection = types.described(types.wrap_ulong(0x7f), types.wrap_string('?'));
    const writer = new types.Writer();
    writer.write(types.wrap_string('not a section'));
    writer.write(unknownSection);
    const payload = Buffer.concat([writer.toBuffer(), good]);
    const frames = cbsLinks(t.host);
    let response: Buffer = Buffer.alloc(0);
    const printed = await printedDuring(async () => {
      ({ response } = await send([...frames, putToken(t.host, 0, payload)], [2, frames.length]));
    });
    assert.deepEqual(printed, []);
    assert.ok(response.includes('status-code', 0, 'latin1'), 'the put-token was answered');
  });

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
