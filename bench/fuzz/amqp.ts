/**
 * AMQP target: sessions of frames built with rhea's own encoder (SASL, open, begin, attach, flow,
 * transfer, disposition, detach, end, close) with odd field values, huge sizes and frames in the
 * wrong order, CBS put-token transfers with odd operations, types, audiences and tokens; a third
 * of them mutated at byte level. Plus mutations of a captured azure-iot-device AMQP session.
 * An `amqp:internal-error` anywhere in the hub's answer is a finding: bad input is the client's error.
 */
import { createRequire } from 'node:module';
import fc from 'fast-check';
import type { FuzzHub } from './hub.js';
import type { FuzzProperty, FuzzTarget } from './harness.js';
import { exchange } from './net.js';
import { applyMutations, mutationsArb } from './mutate.js';
import { oddBody, oddString } from './odd.js';
import { captureSession } from './capture.js';

const require = createRequire(import.meta.url);
/* eslint-disable @typescript-eslint/no-explicit-any */
const frames = require('rhea/lib/frames.js') as any;
const terminus = require('rhea/lib/terminus.js') as any;
const amqpMessage = require('rhea/lib/message.js') as any;

const TLS_PORT = 5671;
const PLAIN_PORT = 5672;

export const SASL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]);
export const AMQP_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]);

export type FrameSpec =
  | { kind: 'header'; bytes: Buffer }
  | { kind: 'sasl'; performative: string; fields: Record<string, unknown> }
  | { kind: 'amqp'; channel: number; performative: string; fields: Record<string, unknown>; payload?: Record<string, unknown> | Uint8Array }
  | { kind: 'raw'; size: number; doff: number; type: number; body: Uint8Array };

export function encodeFrame(f: FrameSpec): Buffer | undefined {
  try {
    switch (f.kind) {
      case 'header':
        return f.bytes;
      case 'sasl':
        return frames.write_frame(frames.sasl_frame(frames[f.performative](f.fields)));
      case 'amqp': {
        const fields = { ...f.fields };
        if (fields.source) fields.source = terminus.source(fields.source).described();
        if (fields.target) fields.target = terminus.target(fields.target).described();
        const payload = f.payload instanceof Uint8Array ? Buffer.from(f.payload) : f.payload ? amqpMessage.encode(f.payload) : undefined;
        return frames.write_frame(frames.amqp_frame(f.channel, frames[f.performative](fields), payload));
      }
      case 'raw': {
        const b = Buffer.alloc(8 + f.body.length);
        b.writeUInt32BE(f.size >>> 0, 0);
        b[4] = f.doff;
        b[5] = f.type;
        Buffer.from(f.body).copy(b, 8);
        return b;
      }
    }
  } catch {
    return undefined; // rhea will not encode it: skip that frame
  }
}

function arbitraries(hub: FuzzHub) {
  const id = hub.devices.fuzz.id;
  const host = hub.host;
  const token = hub.deviceToken(id);
  const uint = fc.oneof(fc.constantFrom(0, 1, 255, 256, 512, 65535, 0x7fffffff, 0xffffffff), fc.nat());
  const channel = fc.oneof({ arbitrary: fc.constantFrom(0, 1), weight: 6 }, { arbitrary: fc.integer({ min: 0, max: 65535 }), weight: 1 });
  const address = fc.oneof(
    fc.constantFrom(
      '$cbs', `/devices/${id}/messages/events`, `/devices/${id}/messages/deviceBound`, `/devices/${id}/methods/devicebound`,
      `/devices/${id}/methods/deviceBound`, `/devices/${id}/twin`, `amqps://${host}/devices/${id}/messages/events`, '/messages/events',
      '/messages/serviceBound/feedback', '/messages/devicebound', '$management', '/devices/other-device/messages/events',
    ),
    oddString,
  );
  const putToken = fc.record({
    message_id: fc.oneof(fc.nat(), oddString),
    reply_to: fc.oneof(fc.constant('cbs-reply'), oddString),
    application_properties: fc.record(
      {
        operation: fc.oneof({ arbitrary: fc.constant('put-token'), weight: 5 }, { arbitrary: oddString, weight: 1 }),
        type: fc.oneof(fc.constantFrom('servicebus.windows.net:sastoken', 'azure-devices.net:sastoken', 'jwt'), oddString),
        name: fc.oneof({ arbitrary: fc.constantFrom(`${host}/devices/${id}`, host, `amqp://${host}/devices/${id}`), weight: 4 }, { arbitrary: oddString, weight: 1 }),
        expiration: fc.oneof(fc.nat(), oddString),
      },
      { requiredKeys: [] },
    ),
    body: fc.oneof({ arbitrary: fc.constant(token), weight: 4 }, { arbitrary: oddString, weight: 2 }, { arbitrary: fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)), weight: 1 }),
  });
  const telemetry = fc.record({
    message_id: fc.option(oddString),
    content_type: fc.option(oddString),
    application_properties: fc.dictionary(oddString, fc.oneof(oddString, fc.integer(), fc.boolean()), { maxKeys: 4 }),
    message_annotations: fc.dictionary(fc.constantFrom('iothub-to', 'x-opt-partition-key', 'iothub-interface-id'), oddString, { maxKeys: 2 }),
    body: fc.oneof(oddBody, fc.uint8Array({ maxLength: 128 }).map((u) => Buffer.from(u))),
  });
  const amqp = (performative: string, fields: fc.Arbitrary<Record<string, unknown>>, payload?: fc.Arbitrary<Record<string, unknown> | Uint8Array | undefined>) =>
    fc.record({ kind: fc.constant('amqp' as const), channel, performative: fc.constant(performative), fields, payload: payload ?? fc.constant(undefined) }) as fc.Arbitrary<FrameSpec>;
  const open = amqp(
    'open',
    fc.record({
      container_id: oddString,
      hostname: fc.oneof({ arbitrary: fc.constant(host), weight: 4 }, { arbitrary: oddString, weight: 1 }),
      max_frame_size: uint,
      channel_max: fc.integer({ min: 0, max: 65535 }),
      idle_time_out: uint,
    }),
  );
  const begin = amqp('begin', fc.record({ remote_channel: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }), next_outgoing_id: uint, incoming_window: uint, outgoing_window: uint, handle_max: uint }));
  const attach = amqp(
    'attach',
    fc.record({
      name: fc.oneof(fc.constant('link'), oddString),
      handle: fc.oneof(fc.constantFrom(0, 1), uint),
      role: fc.boolean(),
      snd_settle_mode: fc.integer({ min: 0, max: 3 }),
      rcv_settle_mode: fc.integer({ min: 0, max: 2 }),
      source: fc.record({ address }),
      target: fc.record({ address }),
      initial_delivery_count: uint,
      max_message_size: fc.option(uint, { nil: undefined }),
    }),
  );
  const flow = amqp('flow', fc.record({ next_incoming_id: uint, incoming_window: uint, next_outgoing_id: uint, outgoing_window: uint, handle: fc.option(uint, { nil: undefined }), delivery_count: uint, link_credit: uint, drain: fc.boolean(), echo: fc.boolean() }));
  const transfer = amqp(
    'transfer',
    fc.record({ handle: fc.oneof(fc.constantFrom(0, 1), uint), delivery_id: uint, delivery_tag: fc.uint8Array({ maxLength: 32 }).map((u) => Buffer.from(u)), message_format: fc.oneof(fc.constant(0), uint), settled: fc.boolean(), more: fc.boolean(), aborted: fc.boolean() }),
    fc.oneof({ arbitrary: putToken, weight: 4 }, { arbitrary: telemetry, weight: 3 }, { arbitrary: fc.uint8Array({ maxLength: 256 }), weight: 1 }),
  );
  const disposition = amqp('disposition', fc.record({ role: fc.boolean(), first: uint, last: fc.option(uint, { nil: undefined }), settled: fc.boolean() }));
  const detach = amqp('detach', fc.record({ handle: uint, closed: fc.boolean() }));
  const end = amqp('end', fc.constant({}));
  const close = amqp('close', fc.constant({}));
  const sasl = fc.record({
    kind: fc.constant('sasl' as const),
    performative: fc.constantFrom('sasl_init', 'sasl_init', 'sasl_response', 'sasl_outcome', 'sasl_mechanisms'),
    fields: fc.record({
      mechanism: fc.oneof(fc.constantFrom('ANONYMOUS', 'PLAIN', 'MSSBCBS', 'EXTERNAL'), oddString),
      initial_response: fc.oneof(
        fc.tuple(fc.oneof(fc.constant(`${id}@sas.${host}`), oddString), fc.oneof(fc.constant(token), oddString)).map(([u, p]) => Buffer.from(`\0${u}\0${p}`)),
        fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
      ),
      hostname: fc.oneof(fc.constant(host), oddString),
      response: fc.uint8Array({ maxLength: 16 }).map((u) => Buffer.from(u)),
      code: fc.integer({ min: 0, max: 255 }),
    }),
  }) as fc.Arbitrary<FrameSpec>;
  const raw = fc.record({
    kind: fc.constant('raw' as const),
    size: fc.oneof(fc.constantFrom(0, 7, 8, 9, 512, 0x7fffffff, 0xffffffff), fc.nat()),
    doff: fc.oneof(fc.constant(2), fc.integer({ min: 0, max: 255 })),
    type: fc.integer({ min: 0, max: 255 }),
    body: fc.uint8Array({ maxLength: 64 }),
  }) as fc.Arbitrary<FrameSpec>;
  const header = fc.oneof(
    fc.constant(SASL_HEADER),
    fc.constant(AMQP_HEADER),
    fc.constantFrom(Buffer.from('AMQP\x02\x01\x00\x00', 'latin1'), Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'), Buffer.from('GET / HTTP/1.1\r\n\r\n')),
  ).map((bytes) => ({ kind: 'header' as const, bytes }));
  const anyFrame = fc.oneof(
    { arbitrary: transfer, weight: 5 },
    { arbitrary: attach, weight: 4 },
    { arbitrary: flow, weight: 2 },
    { arbitrary: begin, weight: 2 },
    { arbitrary: fc.oneof(open, disposition, detach, end, close, sasl, raw, header), weight: 3 },
  );
  // Mostly the right opening (SASL, then AMQP, open, begin), so that the session layer is reached.
  const session = fc.record({
    opening: fc.oneof(
      { arbitrary: fc.tuple(header, sasl, header, open, begin).map((a) => [{ kind: 'header' as const, bytes: SASL_HEADER }, a[1], { kind: 'header' as const, bytes: AMQP_HEADER }, a[3], a[4]]), weight: 6 },
      { arbitrary: fc.array(anyFrame, { maxLength: 3 }).chain((a) => fc.constant([{ kind: 'header' as const, bytes: AMQP_HEADER }, ...a])), weight: 1 },
      { arbitrary: fc.array(fc.oneof(header, sasl, open, begin, raw), { maxLength: 5 }), weight: 1 },
    ),
    frames: fc.array(anyFrame, { maxLength: 10 }),
    tls: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
    mutations: fc.option(mutationsArb, { freq: 2 }),
  });
  return { session };
}

export const amqpTarget: FuzzTarget = {
  name: 'amqp',
  ports: [TLS_PORT, PLAIN_PORT],
  async properties(hub): Promise<FuzzProperty[]> {
    const { session } = arbitraries(hub);
    const capturedChunks = await captureSession('amqp', hub.devices.recorderAmqp.connectionString);
    // The SASL exchange stays as recorded (the hub reads no AMQP frame before its outcome); what follows is mutated.
    const saslEnd = Math.max(0, capturedChunks.findIndex((c) => c.subarray(0, 5).equals(AMQP_HEADER.subarray(0, 5))));
    const capturedSasl = capturedChunks.slice(0, saslEnd);
    const captured = Buffer.concat(capturedChunks.slice(saslEnd));
    const send = async (chunks: Buffer[], tls: boolean, pauseAfter?: number) => {
      const { response } = await exchange(chunks, { host: hub.host, port: tls ? TLS_PORT : PLAIN_PORT, tls, idleMs: 80, pauseAfter });
      if (response.includes('amqp:internal-error')) {
        const at = response.indexOf('amqp:internal-error');
        return `the hub answered amqp:internal-error: ${response.subarray(at, at + 120).toString('latin1').replace(/[^\x20-\x7e]/g, '.')}`;
      }
      return undefined;
    };
    return [
      {
        name: 'frames',
        arbitrary: fc.array(session, { minLength: 1, maxLength: 3 }),
        async run(sessions: any[]) {
          const answers = await Promise.all(
            sessions.map((s) => {
              const chunks = [...s.opening, ...s.frames].map((f: FrameSpec) => encodeFrame(f)).filter((b): b is Buffer => b !== undefined);
              // Up to the SASL init as one stage, the rest (mutated, maybe) once the hub has answered it.
              const sasl = chunks.slice(0, 2);
              const rest = s.mutations ? [applyMutations(Buffer.concat(chunks.slice(2)), s.mutations)] : chunks.slice(2);
              return send([...sasl, ...rest], s.tls, 2);
            }),
          );
          return answers.find((a) => a !== undefined);
        },
      },
      {
        name: 'captured-session',
        arbitrary: fc.record({ mutations: mutationsArb, split: fc.nat(), tls: fc.boolean() }),
        async run({ mutations, split, tls }) {
          const bytes = applyMutations(captured, mutations);
          const at = bytes.length ? split % bytes.length : 0;
          return send([...capturedSasl, ...[bytes.subarray(0, at), bytes.subarray(at)].filter((b) => b.length > 0)], tls, capturedSasl.length);
        },
      },
    ];
  },
};
