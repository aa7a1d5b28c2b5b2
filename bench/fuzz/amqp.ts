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
const types = require('rhea/lib/types.js') as any;

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
        // A disposition's outcome: one of AMQP's by name, or a described type with any descriptor.
        const state = fields.state as { outcome?: string; descriptor?: number } | undefined;
        if (state?.outcome) fields.state = amqpMessage[state.outcome]().described();
        else if (state?.descriptor !== undefined) fields.state = types.described(types.wrap_ulong(state.descriptor), types.wrap_list([]));
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
  // Application property values of any AMQP type rhea writes: the hub must not assume strings.
  const oddValue = fc.oneof(
    { arbitrary: oddString, weight: 3 },
    { arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-1, 0, 2 ** 32, 2 ** 53, -(2 ** 40))), weight: 2 },
    { arbitrary: fc.oneof(fc.boolean(), fc.constant(null), fc.date({ noInvalidDate: true })), weight: 1 },
    { arbitrary: fc.oneof(fc.uint8Array({ maxLength: 16 }).map((u) => Buffer.from(u)), fc.array(fc.nat(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.nat(), { maxKeys: 2 })), weight: 1 },
  );
  const now = Math.floor(Date.now() / 1000);
  const expiry = fc.oneof(
    fc.constantFrom(now + 3600, now - 3600, 0, -1, 2 ** 32, 2 ** 53, now * 1000),
    fc.constantFrom(String(now + 3600), new Date((now + 3600) * 1000).toISOString(), 'tomorrow'),
    fc.constant(new Date((now + 3600) * 1000)),
    oddValue,
  );
  const putToken = fc.record({
    message_id: fc.oneof(fc.nat(), oddString),
    reply_to: fc.oneof(fc.constant('cbs-reply'), oddString),
    application_properties: fc.record(
      {
        operation: fc.oneof({ arbitrary: fc.constant('put-token'), weight: 5 }, { arbitrary: fc.constantFrom('PUT-TOKEN', 'delete-token', 'get-token'), weight: 1 }, { arbitrary: oddValue, weight: 1 }),
        type: fc.oneof(fc.constantFrom('servicebus.windows.net:sastoken', 'azure-devices.net:sastoken', 'jwt', 'azure-devices.net:jwt'), oddValue),
        name: fc.oneof({ arbitrary: fc.constantFrom(`${host}/devices/${id}`, host, `amqp://${host}/devices/${id}`, `${host}/devices/other`, `${host}/devices/${id}/modules/m`), weight: 4 }, { arbitrary: oddValue, weight: 1 }),
        expiration: expiry,
      },
      { requiredKeys: [] },
    ),
    body: fc.oneof(
      { arbitrary: fc.constant(token), weight: 4 },
      { arbitrary: fc.constant(hub.serviceToken), weight: 1 },
      { arbitrary: fc.constantFrom(hub.deviceToken(hub.devices.controlMqtt.id), token.replace(/se=\d+/, 'se=1'), token.replace(/sig=[^&]+/, 'sig=AAAA')), weight: 1 },
      { arbitrary: oddValue, weight: 2 },
    ),
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
    /** Everything in one go, without waiting for the SASL answer (as Qpid Proton pipelines). */
    pipelined: fc.boolean(),
  });
  return { session, putToken, telemetry, oddValue, uint };
}

/**
 * Sessions that get past authentication and link credit, so that the links behind them are what
 * is fuzzed: SASL PLAIN as the device or as the service (iothubowner), or ANONYMOUS then a CBS
 * put-token; then links to the device's and the service's nodes, transfers on them (telemetry,
 * twin operations, method responses, cloud-to-device sends), dispositions with any outcome,
 * detaches and ends; each stage written once the hub has answered the one before.
 */
function linkSessions(hub: FuzzHub, a: ReturnType<typeof arbitraries>) {
  const id = hub.devices.fuzz.id;
  const deviceAddresses = [`/devices/${id}/messages/events`, `/devices/${id}/messages/devicebound`, `/devices/${id}/methods/devicebound`, `/devices/${id}/twin`, `/devices/${id}/modules/m/messages/events`];
  const serviceAddresses = ['/messages/devicebound', '/messages/serviceBound/feedback', '/messages/serviceBound/filenotifications', '$management', `/devices/${id}/messages/devicebound`];
  const auth = fc.constantFrom('device-plain', 'service-plain', 'device-cbs', 'service-cbs', 'cbs-odd');
  const link = fc.record({
    address: fc.oneof({ arbitrary: fc.constantFrom(...deviceAddresses, ...serviceAddresses, '$cbs'), weight: 8 }, { arbitrary: oddString, weight: 1 }),
    // The client's role: false = sender (the hub receives), true = receiver.
    role: fc.boolean(),
    credit: fc.oneof(fc.constantFrom(0, 1, 10, 1000), a.uint),
    snd_settle_mode: fc.constantFrom(0, 0, 1, 2),
  });
  const twinOp = fc.record({
    correlation_id: fc.oneof(fc.constant('c1'), a.oddValue),
    message_annotations: fc.record(
      { operation: fc.oneof(fc.constantFrom('GET', 'PATCH', 'PUT', 'DELETE'), a.oddValue), resource: fc.oneof(fc.constantFrom('/properties/reported', '/notifications/twin/properties/desired', '', '/'), a.oddValue), version: a.oddValue },
      { requiredKeys: [] },
    ),
    body: fc.oneof(fc.json({ maxDepth: 4 }), a.oddValue),
  });
  const methodResponse = fc.record({
    correlation_id: fc.oneof(fc.uuid(), a.oddValue),
    application_properties: fc.record({ 'IoThub-status': fc.oneof(fc.constantFrom(200, 404, 500), a.oddValue) }, { requiredKeys: [] }),
    body: fc.oneof(fc.json({ maxDepth: 3 }).map((j) => Buffer.from(j)), a.oddValue),
  });
  const c2d = fc.record({
    to: fc.oneof(fc.constant(`/devices/${id}/messages/devicebound`), fc.constant(`/devices/${id}/modules/m/messages/devicebound`), a.oddValue),
    message_id: fc.option(a.oddValue, { nil: undefined }),
    ttl: fc.option(a.oddValue, { nil: undefined }),
    absolute_expiry_time: fc.option(fc.oneof(fc.date({ noInvalidDate: true }), a.oddValue), { nil: undefined }),
    application_properties: fc.dictionary(oddString, a.oddValue, { maxKeys: 3 }),
    message_annotations: fc.dictionary(fc.constantFrom('iothub-ack', 'iothub-to'), a.oddValue, { maxKeys: 2 }),
    body: fc.oneof(oddBody, a.oddValue),
  });
  const payload = fc.oneof(a.telemetry, twinOp, methodResponse, c2d, a.putToken, fc.uint8Array({ maxLength: 128 })) as fc.Arbitrary<Record<string, unknown> | Uint8Array>;
  const action = fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('transfer' as const), link: fc.nat(), payload, settled: fc.boolean(), more: fc.boolean() }), weight: 6 },
    {
      arbitrary: fc.record({
        kind: fc.constant('disposition' as const),
        first: fc.integer({ min: 0, max: 4 }),
        span: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
        settled: fc.boolean(),
        state: fc.oneof(fc.constantFrom('accepted', 'rejected', 'released', 'modified').map((outcome) => ({ outcome })), fc.integer({ min: 0, max: 0x40 }).map((descriptor) => ({ descriptor })), fc.constant(undefined)),
      }),
      weight: 3,
    },
    { arbitrary: fc.record({ kind: fc.constant('flow' as const), link: fc.nat(), credit: a.uint, drain: fc.boolean() }), weight: 1 },
    { arbitrary: fc.record({ kind: fc.constantFrom('detach' as const, 'detach-closed' as const, 'end' as const, 'close' as const), link: fc.nat() }), weight: 1 },
  );
  return fc.record({
    auth,
    tls: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
    cbsToken: a.putToken,
    links: fc.array(link, { minLength: 1, maxLength: 4 }),
    actions: fc.array(action, { maxLength: 12 }),
  });
}

type LinkSession = ReturnType<typeof linkSessions> extends fc.Arbitrary<infer T> ? T : never;

/** The frames of a link session, in stages (each written after the hub answered the one before). */
function linkSessionStages(hub: FuzzHub, s: LinkSession): FrameSpec[][] {
  const host = hub.host;
  const id = hub.devices.fuzz.id;
  const plain = (user: string, password: string): FrameSpec => ({ kind: 'sasl', performative: 'sasl_init', fields: { mechanism: 'PLAIN', initial_response: Buffer.from(`\0${user}\0${password}`), hostname: host } });
  const sasl =
    s.auth === 'device-plain'
      ? plain(`${id}@sas.${host}`, hub.deviceToken(id))
      : s.auth === 'service-plain'
        ? plain(`iothubowner@sas.root.${host}`, hub.serviceToken)
        : ({ kind: 'sasl', performative: 'sasl_init', fields: { mechanism: 'ANONYMOUS', hostname: host } } as FrameSpec);
  const frame = (performative: string, fields: Record<string, unknown>, payload?: Record<string, unknown> | Uint8Array): FrameSpec => ({ kind: 'amqp', channel: 0, performative, fields, payload });
  const stages: FrameSpec[][] = [[{ kind: 'header', bytes: SASL_HEADER }, sasl]];
  const opening: FrameSpec[] = [
    { kind: 'header', bytes: AMQP_HEADER },
    frame('open', { container_id: 'fuzz-links', hostname: host, max_frame_size: 65536, channel_max: 10 }),
    frame('begin', { next_outgoing_id: 0, incoming_window: 5000, outgoing_window: 5000 }),
  ];
  // Handles: 0 and 1 are $cbs (when used), then the links from 2.
  if (s.auth.endsWith('cbs')) {
    const token: Record<string, unknown> =
      s.auth === 'device-cbs'
        ? { message_id: 1, reply_to: 'cbs-reply', application_properties: { operation: 'put-token', type: 'azure-devices.net:sastoken', name: `${host}/devices/${id}` }, body: hub.deviceToken(id) }
        : s.auth === 'service-cbs'
          ? { message_id: 1, reply_to: 'cbs-reply', application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: host }, body: hub.serviceToken }
          : s.cbsToken;
    stages.push([
      ...opening,
      frame('attach', { name: 'cbs-sender', handle: 0, role: false, source: { address: 'cbs-sender' }, target: { address: '$cbs' }, initial_delivery_count: 0 }),
      frame('attach', { name: 'cbs-receiver', handle: 1, role: true, source: { address: '$cbs' }, target: { address: 'cbs-reply' } }),
      frame('flow', { next_incoming_id: 0, incoming_window: 5000, next_outgoing_id: 0, outgoing_window: 5000, handle: 1, delivery_count: 0, link_credit: 10 }),
    ]);
    stages.push([frame('transfer', { handle: 0, delivery_id: 0, delivery_tag: Buffer.from([0]), message_format: 0, settled: false }, token)]);
  } else {
    stages.push(opening);
  }
  const first = 2;
  stages.push(
    s.links.flatMap((l, i): FrameSpec[] => {
      const handle = first + i;
      const attach = frame('attach', {
        name: `link-${i}`,
        handle,
        role: l.role,
        snd_settle_mode: l.snd_settle_mode,
        source: { address: l.role ? l.address : `client-${i}` },
        target: { address: l.role ? `client-${i}` : l.address },
        initial_delivery_count: 0,
      });
      return l.role ? [attach, frame('flow', { next_incoming_id: 0, incoming_window: 5000, next_outgoing_id: 1, outgoing_window: 5000, handle, delivery_count: 0, link_credit: l.credit })] : [attach];
    }),
  );
  let deliveryId = 1;
  stages.push(
    s.actions.map((x): FrameSpec => {
      const handle = first + (('link' in x ? x.link : 0) % s.links.length);
      switch (x.kind) {
        case 'transfer': {
          const id = deliveryId++;
          return frame('transfer', { handle, delivery_id: id, delivery_tag: Buffer.from([id & 255]), message_format: 0, settled: x.settled, more: x.more }, x.payload);
        }
        case 'disposition':
          return frame('disposition', { role: true, first: x.first, last: x.span === undefined ? undefined : x.first + x.span, settled: x.settled, state: x.state });
        case 'flow':
          return frame('flow', { next_incoming_id: 0, incoming_window: 5000, next_outgoing_id: deliveryId, outgoing_window: 5000, handle, delivery_count: 0, link_credit: x.credit, drain: x.drain });
        case 'detach':
          return frame('detach', { handle });
        case 'detach-closed':
          return frame('detach', { handle, closed: true });
        case 'end':
          return frame('end', {});
        case 'close':
          return frame('close', {});
      }
    }),
  );
  return stages;
}

export const amqpTarget: FuzzTarget = {
  name: 'amqp',
  ports: [TLS_PORT, PLAIN_PORT],
  async properties(hub): Promise<FuzzProperty[]> {
    const a = arbitraries(hub);
    const { session } = a;
    const linkSession = linkSessions(hub, a);
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
              // Up to the SASL init as one stage, the rest (mutated, maybe) once the hub has answered
              // it, or right behind it (pipelined).
              const sasl = chunks.slice(0, 2);
              const rest = s.mutations ? [applyMutations(Buffer.concat(chunks.slice(2)), s.mutations)] : chunks.slice(2);
              return send([...sasl, ...rest], s.tls, s.pipelined ? undefined : 2);
            }),
          );
          return answers.find((a) => a !== undefined);
        },
      },
      {
        name: 'links',
        arbitrary: fc.array(linkSession, { minLength: 1, maxLength: 2 }),
        async run(sessions: LinkSession[]) {
          const answers = await Promise.all(
            sessions.map(async (s) => {
              const stages = linkSessionStages(hub, s).map((stage) => stage.map((f) => encodeFrame(f)).filter((b): b is Buffer => b !== undefined));
              const stops: number[] = [];
              let n = 0;
              for (const stage of stages.slice(0, -1)) stops.push((n += stage.length));
              const { response } = await exchange(stages.flat(), { host: hub.host, port: s.tls ? TLS_PORT : PLAIN_PORT, tls: s.tls, idleMs: 120, maxMs: 3000, pauseAfter: stops });
              if (response.includes('amqp:internal-error')) {
                const at = response.indexOf('amqp:internal-error');
                return `the hub answered amqp:internal-error: ${response.subarray(at, at + 120).toString('latin1').replace(/[^\x20-\x7e]/g, '.')}`;
              }
              return undefined;
            }),
          );
          return answers.find((x) => x !== undefined);
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
