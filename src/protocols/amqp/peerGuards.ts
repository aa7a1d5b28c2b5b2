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
  const terminus = createRequire(import.meta.url)('rhea/lib/terminus.js') as { unwrap(field: unknown): unknown };
  const unwrap = terminus.unwrap;
  terminus.unwrap = (field: unknown) => {
    const descriptor = (field as { descriptor?: { value?: unknown } } | null | undefined)?.descriptor;
    if (descriptor && !KNOWN_TERMINI.has(String(descriptor.value))) return null;
    return unwrap(field);
  };
}
