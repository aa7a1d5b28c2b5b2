import type { Connection } from 'rhea';

const GUARDED = Symbol('transfers beyond credit refused');

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
export function refuseTransfersBeyondCredit(connection: Connection): void {
  const raw = connection as unknown as { on_transfer(frame: TransferFrame): void; remote_channel_map: Record<number, RawSession | undefined>; [GUARDED]?: true };
  if (raw[GUARDED]) return;
  raw[GUARDED] = true;
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
