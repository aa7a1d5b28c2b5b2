/**
 * bench/eventhub's consumer, in a worker thread of its own (its own event loop, so the load
 * generator's TLS work does not delay its callbacks): an `EventHubConsumerClient.subscribe` on
 * every partition of the built-in endpoint, recording for each event (by message id) when rhea
 * decoded its transfer and when the SDK handed it to `processEvents`, plus the link credit the
 * SDK granted (flow frames) and how long each link sat with no credit while events waited.
 */
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { earliestEventPosition, EventHubConsumerClient, type EventPosition, type SubscribeOptions } from '@azure/event-hubs';

export interface ConsumerSettings {
  connectionString: string;
  /** undefined: the SDK's default (maxBatchSize 1, maxWaitTimeInSeconds 60, prefetch 3 × maxBatchSize). */
  maxBatchSize?: number;
  maxWaitTimeInSeconds?: number;
  prefetchCount?: number;
  total: number;
  /** Read the partitions from their first event (the replay phase) instead of from what is there now. */
  fromStart?: boolean;
}

export interface ConsumerResult {
  /** message id -> [rhea decoded the transfer (ms since epoch), processEvents called, x-opt-enqueued-time] */
  events: [string, number, number, number][];
  /** Flow frames the SDK issued (credit added) and the credit they added in all. */
  flows: number;
  creditAdded: number;
  /** processEvents calls and events in them. */
  batches: number;
  /** Time links spent at zero credit, summed over links (ms). */
  zeroCreditMs: number;
  /** The consumer thread's longest event-loop delay while it received (ms): a stall of its own, not the hub's. */
  loopLateMaxMs: number;
}

const settings = workerData as ConsumerSettings;
// The SDK's rhea (rhea-promise's copy), instrumented: transfers decoded, credit issued.
const rheaPromise = createRequire(import.meta.url).resolve('rhea-promise');
const link = createRequire(createRequire(rheaPromise).resolve('rhea'))('./link.js') as {
  Receiver: { prototype: { dispatch: (name: string, ctx: unknown) => unknown; flow: (credit: number) => void; add_credit: (credit: number) => void; credit: number } };
};
const arrivals = new Map<string, number>();
let flows = 0;
let creditAdded = 0;
let zeroCreditMs = 0;
const zeroSince = new WeakMap<object, number>();
const proto = link.Receiver.prototype;
const dispatch = proto.dispatch;
proto.dispatch = function (this: { credit: number }, name: string, ctx: unknown) {
  if (name === 'message') {
    const m = (ctx as { message?: { message_id?: unknown } }).message;
    if (m?.message_id !== undefined) arrivals.set(String(m.message_id), Date.now());
    if (this.credit === 0) zeroSince.set(this, Date.now());
  }
  return dispatch.call(this, name, ctx);
};
const flow = proto.flow;
proto.flow = function (this: { credit: number }, credit: number) {
  if (credit > 0) {
    flows++;
    creditAdded += credit;
    const since = zeroSince.get(this);
    if (since !== undefined) {
      zeroCreditMs += Date.now() - since;
      zeroSince.delete(this);
    }
  }
  return flow.call(this, credit);
};
// rhea-promise's addCredit calls add_credit, an alias taken of the original flow at load time.
proto.add_credit = proto.flow;

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const received = new Map<string, [number, number]>();
let batches = 0;
const consumer = new EventHubConsumerClient('$Default', settings.connectionString);
const starts: Record<string, EventPosition> = {};
for (const id of await consumer.getPartitionIds()) {
  starts[id] = settings.fromStart ? earliestEventPosition : { sequenceNumber: (await consumer.getPartitionProperties(id)).lastEnqueuedSequenceNumber };
}
const options: SubscribeOptions = { startPosition: starts };
if (settings.maxBatchSize !== undefined) options.maxBatchSize = settings.maxBatchSize;
if (settings.maxWaitTimeInSeconds !== undefined) options.maxWaitTimeInSeconds = settings.maxWaitTimeInSeconds;
if (settings.prefetchCount !== undefined) options.prefetchCount = settings.prefetchCount;
let done!: () => void;
const all = new Promise<void>((r) => (done = r));
let opened = 0;
const subscription = consumer.subscribe(
  {
    processInitialize: async () => {
      if (++opened === Object.keys(starts).length) {
        loop.reset();
        parentPort!.postMessage({ ready: true });
      }
    },
    processEvents: async (events) => {
      const now = Date.now();
      batches++;
      for (const e of events) received.set(String(e.messageId), [now, e.enqueuedTimeUtc.getTime()]);
      if (received.size >= settings.total) done();
    },
    processError: async (err) => console.error('consumer error', err.message),
  },
  options,
);
parentPort!.on('message', async (m: { stop?: number }) => {
  if (m.stop === undefined) return;
  // (the replay phase asks at once: its events are all in the log already)
  await Promise.race([all, new Promise((r) => setTimeout(r, m.stop))]);
  const events: ConsumerResult['events'] = [];
  for (const [id, [at, enqueued]] of received) events.push([id, arrivals.get(id) ?? NaN, at, enqueued]);
  const result: ConsumerResult = { events, flows, creditAdded, batches, zeroCreditMs, loopLateMaxMs: Math.max(0, loop.max / 1e6 - 10) };
  parentPort!.postMessage({ result });
  await subscription.close();
  await consumer.close();
});
