import type { EventHubConsumerClient, EventPosition, ReceivedEventData } from '@azure/event-hubs';

/** Receives from one partition with the SDK's subscribe until `until` holds; returns what came. */
export async function receive(
  client: EventHubConsumerClient,
  partitionId: string,
  startPosition: EventPosition,
  until: (events: ReceivedEventData[]) => boolean,
  options: {
    ownerLevel?: number;
    onError?: (e: Error) => void;
    onStarted?: () => void;
    /** The SDK's receive settings beyond maxWaitTimeInSeconds 1 (maxBatchSize, prefetchCount). */
    subscribe?: { maxBatchSize?: number; prefetchCount?: number };
    timeoutMs?: number;
  } = {},
): Promise<ReceivedEventData[]> {
  const events: ReceivedEventData[] = [];
  let resolveDone!: () => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  const subscription = client.subscribe(
    partitionId,
    {
      processInitialize: async () => options.onStarted?.(),
      processEvents: async (batch) => {
        events.push(...batch);
        if (until(events)) resolveDone();
      },
      processError: async (err) => {
        if (options.onError) options.onError(err);
        else rejectDone(err);
      },
    },
    { startPosition, maxWaitTimeInSeconds: 1, ownerLevel: options.ownerLevel, ...options.subscribe },
  );
  const timer = setTimeout(() => rejectDone(new Error(`timed out with ${events.length} events`)), options.timeoutMs ?? 15_000);
  try {
    await done;
  } finally {
    clearTimeout(timer);
    await subscription.close();
  }
  return events;
}
