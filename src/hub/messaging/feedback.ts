import type { C2dFeedbackRecord, C2dFeedbackStore, C2dQueue } from '../../store/index.js';
import { ServiceBoundQueue, type ServiceBoundBatch } from './serviceBoundQueue.js';
import { HeldCloudToDeviceSettings } from './cloudToDeviceSettings.js';

/** IoT Hub batches feedback records; at most this many per message. */
export const FEEDBACK_BATCH = 64;

/** A batch out for delivery to the service; settle it once the service answered. */
export type FeedbackBatch = ServiceBoundBatch<C2dFeedbackRecord>;

/**
 * Cloud-to-device feedback: the outcomes the queue recorded for messages sent with `iothub-ack`,
 * leased in batches to the service's feedback receivers and removed when completed, or, as the
 * hub's `cloudToDevice.feedback` settings say, once delivered `maxDeliveryCount` times without
 * being completed or older than `ttlAsIso8601`.
 */
export class CloudToDeviceFeedback extends ServiceBoundQueue<C2dFeedbackRecord> {
  constructor(
    private readonly records: C2dFeedbackStore,
    private readonly settings: HeldCloudToDeviceSettings = new HeldCloudToDeviceSettings(),
    private readonly now: () => number = Date.now,
  ) {
    super(
      {
        pending: (max, exclude) => records.pending(max, exclude, now() - settings.current().feedback.ttlMs, settings.current().feedback.maxDeliveryCount),
        remove: (ids) => records.remove(ids),
        delivered: (ids) => records.delivered(ids),
        released: (ids) => records.removeExhausted(ids, settings.current().feedback.maxDeliveryCount),
      },
      FEEDBACK_BATCH,
    );
  }

  /** How long a delivered batch stays locked to its receiver (`feedback.lockDurationAsIso8601`). */
  lockMs(): number {
    return this.settings.current().feedback.lockMs;
  }

  /** Removes the records past the feedback's time to live; how many. */
  expire(): Promise<number> {
    return this.records.purge(this.now() - this.settings.current().feedback.ttlMs);
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
 * so that `Expired` feedback arrives then, as on IoT Hub; and feedback records past their time to
 * live. Returns the stop function.
 */
export function startC2dExpiry(queue: C2dQueue, feedback: CloudToDeviceFeedback, everyMs: number, onError: (e: unknown) => void, now: () => number = Date.now): () => void {
  let running = false;
  const timer = setInterval(() => {
    // A sweep goes in slices with turns between; the next tick does not start another meanwhile.
    if (running) return;
    running = true;
    void (async () => {
      try {
        await queue.expire(now());
        await feedback.expire();
      } catch (e) {
        onError(e);
      } finally {
        running = false;
      }
    })();
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
