/** Helpers for tests that drive the unmodified @azure/service-bus client. */
import type { ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';

/** Receives until `count` messages came or `ms` passed. */
export async function receiveAll(receiver: ServiceBusReceiver, count: number, ms = 5000): Promise<ServiceBusReceivedMessage[]> {
  const out: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + ms;
  while (out.length < count && Date.now() < deadline) {
    out.push(...(await receiver.receiveMessages(count - out.length, { maxWaitTimeInMs: Math.min(1000, Math.max(100, deadline - Date.now())) })));
  }
  return out;
}
