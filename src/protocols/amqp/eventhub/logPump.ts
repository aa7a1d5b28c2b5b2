import { setImmediate as nextTurn } from 'node:timers/promises';
import type { EventLogReader, LogPosition, LoggedEvent } from '../../../hub/eventhub/types.js';

/**
 * Most events one receiver link is handed per turn of the event loop: 3-5 ms of the hub's thread.
 * Measured in bench:eventhub's replay (20,000 events, 4 links): 64 cost ~15% more CPU per event,
 * 256 held the loop up to 55-60 ms; 128 delivers as fast as before (10-12k events/s, 33-37 µs each)
 * with the loop late 21-57 ms at most where it was 75-131.
 */
export const EVENTS_PER_TURN = 128;

export interface LogPumpOptions {
  log: Pick<EventLogReader, 'read'>;
  partition: number;
  /** Where the receiver stands: the next event read is the first after (or at, if inclusive) it. */
  from: LogPosition;
  /** How many events the receiver can take now (its credit, as far as its session has room). */
  room(): number;
  /** Whether the receiver is gone (closed, detached): nothing more is read for it. */
  ended(): boolean;
  /** Hands the receiver a batch of events, in log order (the next read waits for it). */
  send(events: LoggedEvent[]): void | Promise<void>;
  /** Reading the log failed: the pump stops. */
  failed(e: unknown): void;
  /** Default EVENTS_PER_TURN. */
  perTurn?: number;
}

/**
 * Hands one receiver the log's events as fast as its credit allows, `perTurn` at most per turn of
 * the event loop. A consumer catching up on a backlog gives credit by the thousand (the SDK's
 * prefetch on every receive call); read and sent in one go, 2,048 events held the hub's only
 * thread for 60-100 ms (bench:eventhub's replay), and every device's PUBACK, method and twin
 * waited behind it. Between batches the pump waits a turn (setImmediate: after the I/O that
 * came meanwhile), so a catch-up costs the others a few milliseconds at a time.
 *
 * Returns the trigger: call it whenever there may be more to send (an append, new credit); calls
 * while a pump runs make it go round once more rather than start a second one.
 */
export function logPump(o: LogPumpOptions): () => void {
  const perTurn = o.perTurn ?? EVENTS_PER_TURN;
  let position = o.from;
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    running = true;
    try {
      do {
        again = false;
        const room = o.room();
        if (o.ended() || room <= 0) break;
        const want = Math.min(room, perTurn);
        const events = await o.log.read(o.partition, position, want);
        if (events.length === 0 || o.ended()) break;
        await o.send(events);
        position = { sequenceNumber: events[events.length - 1]!.sequenceNumber };
        // A full batch: there may be more (and credit for it) after the others had their turn.
        // A short one read to the log's end; only a trigger (an append, credit) brings more.
        if (events.length === want) {
          again = true;
          await nextTurn();
        }
      } while (again);
    } catch (e) {
      o.failed(e);
    } finally {
      running = false;
    }
  };
  return () => {
    if (running) again = true;
    else void run();
  };
}
