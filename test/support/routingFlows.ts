/** Helpers of the routing flow tests: reading an event hub with the unmodified consumer, sending as a device. */
import { EventHubConsumerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import device from 'azure-iot-device';

/** Every event of `eventHub` from the start, once `enough(events)` holds (or `ms` passed: then what came). */
export async function readEventHub(connectionString: string, eventHub: string, enough: (events: ReceivedEventData[]) => boolean, ms = 15_000): Promise<ReceivedEventData[]> {
  const consumer = new EventHubConsumerClient('$Default', connectionString, eventHub);
  const events: ReceivedEventData[] = [];
  try {
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const sub = consumer.subscribe(
      {
        processEvents: async (batch) => {
          events.push(...batch);
          if (enough(events)) done();
        },
        processError: async () => undefined,
      },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1, maxBatchSize: 500 },
    );
    const timer = setTimeout(done, ms);
    await finished;
    clearTimeout(timer);
    await sub.close();
  } finally {
    await consumer.close();
  }
  return events;
}

export const bodyText = (e: { body: unknown }): string => (Buffer.isBuffer(e.body) ? e.body.toString() : typeof e.body === 'string' ? e.body : JSON.stringify(e.body));

/** Sends one telemetry message through the unmodified device client. */
export async function sendAs(client: InstanceType<typeof device.Client>, body: string, props: Record<string, string> = {}, json = false): Promise<void> {
  const m = new device.Message(body);
  for (const [k, v] of Object.entries(props)) m.properties.add(k, v);
  if (json) {
    m.contentType = 'application/json';
    m.contentEncoding = 'utf-8';
  }
  await client.sendEvent(m);
}
