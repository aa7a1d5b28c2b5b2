import type { DirectMethods } from '../../hub/methods/methods.js';
import type { DeviceSession, TopicHandler } from './handler.js';
import { parseTopic, violation } from './requestTopics.js';

const REQUESTS = '$iothub/methods/POST/#';

/** Direct methods: requests on `$iothub/methods/POST/{name}/?$rid=`, answers on `$iothub/methods/res/{status}/?$rid=`. */
export function methodTopics(methods: DirectMethods): TopicHandler {
  const detachers = new Map<DeviceSession, () => void>();

  const detach = (session: DeviceSession) => {
    detachers.get(session)?.();
    detachers.delete(session);
  };

  return {
    owns: (topic) => topic.startsWith('$iothub/methods/'),

    async subscribe(session, filter, qos) {
      if (filter !== REQUESTS) return 0x80;
      if (!detachers.has(session)) session.onClose(() => detach(session));
      detachers.get(session)?.();
      detachers.set(
        session,
        methods.attach(session.deviceId, session.moduleId, {
          send: (request) =>
            session.publish(`$iothub/methods/POST/${request.methodName}/?$rid=${request.requestId}`, request.payload, qos),
        }),
      );
      return qos;
    },

    async unsubscribe(session, filter) {
      if (filter === REQUESTS) detach(session);
    },

    async publish(session, message) {
      const { segments, query } = parseTopic(message.topic);
      const status = Number(segments[3]);
      const rid = query.get('$rid');
      if (segments[2] !== 'res' || !Number.isInteger(status) || !rid) throw violation(`Not a method response topic: ${message.topic}`);
      methods.respond(session.deviceId, session.moduleId, rid, status, message.payload);
    },
  };
}
