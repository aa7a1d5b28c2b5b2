/**
 * Guards between rhea and what a peer may send, each for a way a device's frames made rhea (which
 * is written for well-behaved peers) misbehave under `npm run fuzz`. Applied to every connection the
 * endpoint accepts (guardConnection) and once to rhea itself (guardRhea).
 */
import { createRequire } from 'node:module';
import type { Connection } from 'rhea';

const GUARDED = Symbol('guarded against its peer');

interface RawLink {
  credit: number;
  _incomplete?: unknown;
  is_receiver(): boolean;
  is_closed(): boolean;
  close(error: { condition: string; description: string }): void;
  state: { local_open: boolean };
}
interface RawSession {
  remote: { handles: Record<number, RawLink | undefined> };
  incoming: { next_transfer_id: number; next_delivery_id?: number };
}
interface TransferFrame {
  channel: number;
  performative: { handle: number; delivery_id?: number };
}

/**
 * A transfer on a link the hub gave no credit is a protocol violation (AMQP 1.0 §2.6.7): rhea
 * would take it anyway and write a line to stderr for each one, so a device could both bypass the
 * hub's flow control and flood its console. Such a link is detached with
 * `amqp:link:transfer-limit-exceeded`, as the spec names it, and its transfers are dropped
 * (keeping the session's delivery ids in step, so the device's other links carry on).
 */
function refuseTransfersBeyondCredit(connection: Connection): void {
  const raw = connection as unknown as { on_transfer(frame: TransferFrame): void; remote_channel_map: Record<number, RawSession | undefined> };
  const deliver = raw.on_transfer;
  raw.on_transfer = function (this: typeof raw, frame: TransferFrame) {
    const session = this.remote_channel_map[frame.channel];
    const link = session?.remote.handles[frame.performative.handle];
    if (session && link?.is_receiver() && !link._incomplete && (link.credit <= 0 || !link.state.local_open)) {
      session.incoming.next_transfer_id++;
      if (frame.performative.delivery_id !== undefined && session.incoming.next_delivery_id === frame.performative.delivery_id) session.incoming.next_delivery_id++;
      if (link.state.local_open) link.close({ condition: 'amqp:link:transfer-limit-exceeded', description: 'Transfer without link credit' });
      return;
    }
    // A transfer on a link the hub sends on (AMQP 1.0 §2.7.5: only the sending end transfers):
    // rhea took it as a message on the hub's sender, spending the credit the peer had given the
    // hub (printing when there was none). Found by `npm run fuzz`. Dropped, and the link detached.
    if (session && link && !link.is_receiver()) {
      session.incoming.next_transfer_id++;
      if (frame.performative.delivery_id !== undefined && session.incoming.next_delivery_id === frame.performative.delivery_id) session.incoming.next_delivery_id++;
      if (link.state.local_open) link.close({ condition: 'amqp:not-allowed', description: 'Transfer on a link the peer receives on' });
      return;
    }
    deliver.call(this, frame);
  };
}

/**
 * The hub sends a heartbeat every half of the peer's idle time-out (AMQP 1.0 §2.4.5). Taken as
 * given, 1 ms had the hub write an empty frame every half millisecond, and 0xFFFFFFFF (over
 * Node's largest timer) fell back to 1 ms with a TimeoutOverflowWarning: either way a flood from
 * one small open frame. The peer's value is held between these bounds (a heartbeat at least every
 * second, and at most Node's longest timer).
 */
export const MIN_PEER_IDLE_TIMEOUT_MS = 2_000;
export const MAX_PEER_IDLE_TIMEOUT_MS = 2 ** 31 - 2;

function boundPeerIdleTimeout(connection: Connection): void {
  const raw = connection as unknown as { on_open(frame: unknown): void; remote: { open?: { idle_time_out?: number } } };
  const bound = (performative?: { idle_time_out?: number }) => {
    if (performative?.idle_time_out) performative.idle_time_out = Math.min(MAX_PEER_IDLE_TIMEOUT_MS, Math.max(MIN_PEER_IDLE_TIMEOUT_MS, performative.idle_time_out));
  };
  bound(raw.remote.open); // a connection guarded only once open (WebSocket)
  const open = raw.on_open;
  raw.on_open = function (this: typeof raw, frame: { performative?: { idle_time_out?: number } }) {
    bound(frame.performative);
    open.call(this, frame);
  };
}

export function guardConnection(connection: Connection): void {
  const raw = connection as unknown as { [GUARDED]?: true };
  if (raw[GUARDED]) return;
  raw[GUARDED] = true;
  refuseTransfersBeyondCredit(connection);
  boundPeerIdleTimeout(connection);
}

/** Source and target, by code (0x28, 0x29) and by name: rhea's by_descriptor keys. */
const KNOWN_TERMINI = new Set(['40', '41', 'amqp:source:list', 'amqp:target:list']);

let rheaGuarded = false;
/**
 * rhea prints `Unknown terminus` to the console for each attach whose source or target has a
 * descriptor it does not know: a device could fill the hub's console. Such a terminus is taken as
 * absent, silently (the attach then names no address and is refused as not found).
 */
export function guardRhea(): void {
  if (rheaGuarded) return;
  rheaGuarded = true;
  const require = createRequire(import.meta.url);
  silenceMalformedMessageSections(require);
  silenceUnknownOutcomes(require);
  boundPeerDrain(require);
  readFramesPipelinedAfterSasl(require);
  const terminus = require('rhea/lib/terminus.js') as { unwrap(field: unknown): unknown };
  const unwrap = terminus.unwrap;
  terminus.unwrap = (field: unknown) => {
    const descriptor = (field as { descriptor?: { value?: unknown } } | null | undefined)?.descriptor;
    if (descriptor && !KNOWN_TERMINI.has(String(descriptor.value))) return null;
    return unwrap(field);
  };
}

/** The message sections of AMQP 1.0 §3.2, by code (0x70–0x78) and by name: rhea's unwrappers' keys. */
const KNOWN_SECTIONS = new Set([
  ...Array.from({ length: 9 }, (_, i) => String(0x70 + i)),
  'amqp:header:list', 'amqp:delivery-annotations:map', 'amqp:message-annotations:map', 'amqp:properties:list', 'amqp:application-properties:map',
  'amqp:data:binary', 'amqp:amqp-sequence:list', 'amqp:value:*', 'amqp:footer:map',
]);

/**
 * rhea prints a warning for each section of a message that is not a described type, or whose
 * descriptor it does not know (found by `npm run fuzz`: a mutated SDK session): a device could
 * fill the hub's console. Such sections are dropped silently before rhea decodes the message, as
 * rhea itself would drop them after printing.
 */
function silenceMalformedMessageSections(require: NodeJS.Require): void {
  const message = require('rhea/lib/message.js') as { decode(buffer: Buffer): unknown };
  const types = require('rhea/lib/types.js') as { Reader: new (b: Buffer) => { position: number; remaining(): number; read(): { descriptor?: { value?: unknown } } } };
  const decode = message.decode;
  message.decode = (buffer: Buffer) => {
    const reader = new types.Reader(buffer);
    const kept: Buffer[] = [];
    let dropped = false;
    while (reader.remaining()) {
      const start = reader.position;
      const section = reader.read();
      if (section?.descriptor && KNOWN_SECTIONS.has(String(section.descriptor.value))) kept.push(buffer.subarray(start, reader.position));
      else dropped = true;
    }
    return decode(dropped ? Buffer.concat(kept) : buffer);
  };
}

/**
 * rhea prints `unrecognised outcome` for each disposition whose state is not one of AMQP's
 * outcomes (found by `npm run fuzz`). Such a state is taken as given, silently, as rhea does after
 * printing (none of the hub's links acts on an outcome it does not know).
 */
function silenceUnknownOutcomes(require: NodeJS.Require): void {
  type Outcome = { descriptor?: unknown } | undefined;
  const message = require('rhea/lib/message.js') as Record<string, (o: Outcome) => unknown> & { unwrap_outcome(o: Outcome): unknown };
  const unwrap = message.unwrap_outcome;
  const known = ['received', 'accepted', 'rejected', 'released', 'modified'].map((name) => message[`is_${name}`]!);
  message.unwrap_outcome = (outcome: Outcome) => (known.some((is) => is(outcome)) ? unwrap(outcome) : outcome);
}

/**
 * A sender's flow with drain set says it has used up or given up its credit (AMQP 1.0 §2.6.7),
 * so its link-credit is 0. rhea took the peer's link-credit as the hub's receiver's credit, and
 * printed an error when it was not 0 (found by `npm run fuzz`): a device could raise its own credit
 * past the hub's flow control, and fill the console. The hub's credit now only goes down on a
 * drain: to 0, or to 1 while a multi-frame delivery the hub admitted is still arriving (so its
 * last frame is not a transfer without credit).
 */
function boundPeerDrain(require: NodeJS.Require): void {
  type Frame = { performative: { drain?: boolean; link_credit?: number; delivery_count?: number } };
  const link = require('rhea/lib/link.js') as { Receiver: { prototype: { on_flow(this: RawReceiver, frame: Frame): void } } };
  interface RawReceiver {
    credit: number;
    delivery_count: number;
    _incomplete?: unknown;
    dispatch(event: string, context: unknown): void;
    _context(): unknown;
  }
  const onFlow = link.Receiver.prototype.on_flow;
  link.Receiver.prototype.on_flow = function (this: RawReceiver, frame: Frame) {
    if (!frame.performative.drain) return onFlow.call(this, frame);
    this.dispatch('receiver_flow', this._context());
    this.credit = this._incomplete ? Math.min(this.credit, 1) : 0;
    if (frame.performative.delivery_count !== undefined) this.delivery_count = frame.performative.delivery_count;
    this.dispatch('receiver_drained', this._context());
  };
}

/**
 * A client may send its AMQP header and open frame right behind its SASL init, without waiting for
 * the outcome (AMQP 1.0 §5.3.2 lets it: Qpid Proton does so for ANONYMOUS and EXTERNAL). rhea's
 * server decides the outcome asynchronously, after it has already put the bytes that followed the
 * init aside as an incomplete SASL frame, and reads them only when more bytes arrive: a client
 * waiting for the open it sent to be answered waited forever. Once the outcome is OK, what was put
 * aside is read as AMQP at once.
 */
function readFramesPipelinedAfterSasl(require: NodeJS.Require): void {
  interface RawSaslServer {
    outcome?: number;
    connection: { previous_input?: Buffer | null; input(buffer: Buffer): void };
  }
  const sasl = require('rhea/lib/sasl.js') as { Server: { prototype: { do_step(this: RawSaslServer, challenge: unknown): void } } };
  const doStep = sasl.Server.prototype.do_step;
  sasl.Server.prototype.do_step = function (this: RawSaslServer, challenge: unknown) {
    doStep.call(this, challenge);
    // 0 is SASL's ok; rhea.Connection.input reads what it put aside before the (here empty) new bytes.
    if (this.outcome === 0 && this.connection.previous_input?.length) this.connection.input(Buffer.alloc(0));
  };
}
