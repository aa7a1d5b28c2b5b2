import rhea, { type Delivery, type Message, type Sender } from 'rhea';
import type { DeviceConnections } from '../../../hub/connections/deviceConnections.js';
import type { CloudToDevice } from '../../../hub/messaging/cloudToDevice.js';
import type { CloudToDeviceMessage } from '../../../hub/messaging/cloudToDeviceMessage.js';
import { amqpErrors } from '../errors.js';
import type { IncomingLink, LinkRoute } from '../link.js';
import { deviceAddress, deviceLink } from './identity.js';

type Outcome = void | 'Rejected' | 'Abandoned';

/**
 * The device's cloud-to-device receiver (`/devices/{id}/messages/devicebound`): the queue's
 * messages one at a time; accept completes, reject dead-letters (with feedback), release or
 * modify abandons (delivered again). A message unsettled when the link goes stays queued.
 */
export function cloudToDeviceReceiveRoute(cloudToDevice: CloudToDevice, connections: DeviceConnections): LinkRoute {
  return {
    role: 'send',
    address: deviceAddress('messages/devicebound'),
    async open(incoming: IncomingLink<Sender>, m) {
      const { link } = incoming;
      link.set_source(link.source);
      if (m[2]) {
        link.close(amqpErrors.notFound('Modules receive cloud-to-device messages only as module inputs'));
        return;
      }
      const session = await deviceLink(connections, incoming, m);
      if (!session) return;
      const waiting = new Map<Delivery, { resolve(o: Outcome): void; reject(e: Error): void }>();
      let creditWaiter: (() => void) | undefined;
      const settle = (d: Delivery | undefined, outcome: Outcome) => {
        const w = d && waiting.get(d);
        if (!w) return;
        waiting.delete(d);
        w.resolve(outcome);
      };
      link.on('accepted', (c) => settle(c.delivery, undefined));
      link.on('rejected', (c) => settle(c.delivery, 'Rejected'));
      link.on('released', (c) => settle(c.delivery, 'Abandoned'));
      link.on('modified', (c) => settle(c.delivery, 'Abandoned'));
      link.on('sendable', () => creditWaiter?.());
      const detach = cloudToDevice.attach(session.identity.deviceId, {
        deliver: async (message) => {
          while (!link.sendable()) {
            if (!link.is_open()) throw new Error('link closed');
            await new Promise<void>((resolve) => (creditWaiter = resolve));
          }
          return new Promise<Outcome>((resolve, reject) => {
            const delivery = link.send(c2dMessage(message));
            waiting.set(delivery, { resolve, reject });
          });
        },
      });
      const end = () => {
        detach();
        creditWaiter?.();
        for (const w of waiting.values()) w.reject(new Error('link closed'));
        waiting.clear();
      };
      link.on('sender_close', end);
      incoming.connection.onClose(end);
    },
  };
}

function c2dMessage(m: CloudToDeviceMessage): Message {
  const message: Message = {
    message_id: m.messageId,
    to: `/devices/${m.deviceId}/messages/devicebound`,
    absolute_expiry_time: m.expiryTime as never,
    body: rhea.message.data_section(m.body),
    application_properties: { ...m.properties },
    message_annotations: { 'iothub-enqueuedtime': rhea.types.wrap_timestamp(m.enqueuedTime), 'x-opt-delivery-count': m.deliveryCount - 1 },
    delivery_count: m.deliveryCount - 1,
  };
  if (m.correlationId !== undefined) message.correlation_id = m.correlationId;
  if (m.userId !== undefined) message.user_id = Buffer.from(m.userId, 'utf8') as never;
  if (m.contentType !== undefined) message.content_type = m.contentType;
  if (m.contentEncoding !== undefined) message.content_encoding = m.contentEncoding;
  if (m.ack !== 'none') (message.application_properties as Record<string, string>)['iothub-ack'] = m.ack;
  return message;
}
