import type { C2dFeedbackRecord, C2dFeedbackStore, C2dQueue } from '../../store/index.js';
import { ServiceBoundQueue, type ServiceBoundBatch } from './serviceBoundQueue.js';

/** IoT Hub batches feedback records; at most this many per message. */
export const FEEDBACK_BATCH = 64;

/** A batch out for delivery to the service; settle it once the service answered. */
export type FeedbackBatch = ServiceBoundBatch<C2dFeedbackRecord>;

/**
 * Cloud-to-device feedback: the outcomes the queue recorded for messages sent with `iothub-ack`,
 * leased in batches to the service's feedback receivers and removed only when completed.
 */
export class CloudToDeviceFeedback extends ServiceBoundQueue<C2dFeedbackRecord> {
  constructor(store: C2dFeedbackStore) {
    super(store, FEEDBACK_BATCH);
  }
}

/** The queue, telling `feedback` whenever an operation may have recorded an outcome. */
export function notifyingOutcomes(queue: C2dQueue, feedback: CloudToDeviceFeedback): C2dQueue {
  return {
    enqueue: (m, maxDepth, now) => queue.enqueue(m, maxDepth, now),
    next: async (deviceId, now, max) => {
      const m = await queue.next(deviceId, now, max);
      feedback.recorded();
      return m;
    },
    lock: async (deviceId, now, max, token, until) => {
      const m = await queue.lock(deviceId, now, max, token, until);
      feedback.recorded();
      return m;
    },
    settleLock: async (deviceId, token, action, now) => {
      const done = await queue.settleLock(deviceId, token, action, now);
      if (done && action !== 'abandon') feedback.recorded();
      return done;
    },
    complete: async (deviceId, seq, outcome, now) => {
      const done = await queue.complete(deviceId, seq, outcome, now);
      feedback.recorded();
      return done;
    },
    depth: (deviceId, now) => queue.depth(deviceId, now),
    expire: async (now) => {
      const n = await queue.expire(now);
      if (n > 0) feedback.recorded();
      return n;
    },
  };
}

/**
 * Expires cloud-to-device messages as their time comes, whether or not the device is connected,
 * so that `Expired` feedback arrives then, as on IoT Hub. Returns the stop function.
 */
export function startC2dExpiry(queue: C2dQueue, everyMs: number, onError: (e: unknown) => void, now: () => number = Date.now): () => void {
  const timer = setInterval(() => void queue.expire(now()).catch(onError), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
