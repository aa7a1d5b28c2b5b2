import type { CloudToDevice } from '../../hub/messaging/cloudToDevice.js';
import type { CloudToDeviceMessage } from '../../hub/messaging/cloudToDeviceMessage.js';
import type { DeviceSession, TopicHandler } from './handler.js';
import { violation } from './requestTopics.js';

const devicebound = (deviceId: string) => `devices/${deviceId}/messages/devicebound/`;

/**
 * Cloud-to-device delivery: once a device subscribes `devices/{id}/messages/devicebound/#`, its
 * queue is delivered at QoS 1 and each message completed by its PUBACK.
 */
export function cloudToDeviceTopics(cloudToDevice: CloudToDevice): TopicHandler {
  const detachers = new Map<DeviceSession, () => void>();
  const watched = new WeakSet<DeviceSession>();
  const closed = new WeakSet<DeviceSession>();
  const detach = (session: DeviceSession) => {
    detachers.get(session)?.();
    detachers.delete(session);
  };

  return {
    owns: (topic) => /^devices\/[^/]+\/messages\/devicebound(\/|$)/.test(topic),

    async subscribe(session, filter) {
      // Modules receive input messages, not cloud-to-device messages.
      if (session.moduleId !== undefined || filter !== `${devicebound(session.deviceId)}#`) return 0x80;
      if (!watched.has(session)) {
        watched.add(session);
        session.onClose(() => {
          closed.add(session);
          detach(session);
        });
      }
      // Start delivering after the SUBACK is on its way.
      setImmediate(() => {
        if (!closed.has(session) && !detachers.has(session)) {
          detachers.set(session, cloudToDevice.attach(session.deviceId, { deliver: (m) => session.publish(topicOf(m), m.body, 1) }));
        }
      });
      return 1;
    },

    async unsubscribe(session) {
      detach(session);
    },

    async publish(_session, message) {
      throw violation(`Devices cannot publish to ${message.topic}`);
    },
  };
}

/** `devices/{id}/messages/devicebound/{property bag}`, system properties first, URL-encoded. */
export function topicOf(m: CloudToDeviceMessage): string {
  const bag: [string, string | undefined][] = [
    ['$.mid', m.messageId],
    ['$.to', `/devices/${m.deviceId}/messages/devicebound`],
    ['$.cid', m.correlationId],
    ['$.uid', m.userId],
    ['$.ct', m.contentType],
    ['$.ce', m.contentEncoding],
    ['$.exp', new Date(m.expiryTime).toISOString()],
    ['iothub-ack', m.ack === 'none' ? undefined : m.ack],
    ...Object.entries(m.properties),
  ];
  return (
    devicebound(m.deviceId) +
    bag
      .filter((p): p is [string, string] => p[1] !== undefined)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join('&')
  );
}
