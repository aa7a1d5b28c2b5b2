import { HubError } from '../../core/errors.js';
import type { Twins } from '../../hub/twins/twins.js';
import { DesiredView } from '../../hub/twins/desiredView.js';
import type { DeviceSession, InboundPublish, TopicHandler } from './handler.js';
import { identityKey, mqttErrorBody, parseTopic, violation } from './requestTopics.js';

const RESPONSES = '$iothub/twin/res/#';
const DESIRED = '$iothub/twin/PATCH/properties/desired/#';

/**
 * The twin topics: GET and reported PATCH requests answered on `$iothub/twin/res/{status}/?$rid=`,
 * and desired-property notifications for sessions subscribed to them.
 */
export function twinTopics(twins: Twins): TopicHandler {
  const desiredSubscribers = new Map<string, Map<DeviceSession, 0 | 1>>();
  const views = new WeakMap<DeviceSession, DesiredView>();
  const viewOf = (session: DeviceSession) => views.get(session) ?? views.set(session, new DesiredView()).get(session)!;

  twins.onDesiredPropertiesChange((change) => {
    const sessions = desiredSubscribers.get(identityKey(change));
    if (!sessions) return;
    const topic = `$iothub/twin/PATCH/properties/desired/?$version=${change.patch.$version}`;
    const body = JSON.stringify(change.patch);
    for (const [session, qos] of sessions) {
      viewOf(session).delivered(change.patch);
      session.publish(topic, body, qos).catch(() => undefined);
    }
  });

  const respond = (session: DeviceSession, status: number, rid: string, body: string, extra = '') =>
    session.publish(`$iothub/twin/res/${status}/?$rid=${encodeURIComponent(rid)}${extra}`, body, 0).catch(() => undefined);

  return {
    owns: (topic) => topic.startsWith('$iothub/twin/'),

    async subscribe(session, filter, qos) {
      if (filter === RESPONSES) return qos;
      if (filter === DESIRED) {
        const k = identityKey(session);
        const sessions = desiredSubscribers.get(k) ?? new Map<DeviceSession, 0 | 1>();
        desiredSubscribers.set(k, sessions);
        if (!sessions.has(session)) session.onClose(() => forget(session));
        sessions.set(session, qos);
        // After the SUBACK: what changed since the device's twin GET (a patch it would otherwise miss).
        setImmediate(() => {
          viewOf(session)
            .catchUp(twins, session.deviceId, session.moduleId)
            .then((patch) => patch && session.publish(`$iothub/twin/PATCH/properties/desired/?$version=${patch.$version}`, JSON.stringify(patch), qos))
            .catch(() => undefined);
        });
        return qos;
      }
      return 0x80;
    },

    async unsubscribe(session, filter) {
      if (filter === DESIRED) forget(session);
    },

    async publish(session: DeviceSession, message: InboundPublish) {
      const { segments, query } = parseTopic(message.topic);
      const rid = query.get('$rid');
      const op = segments.slice(2).join('/').toUpperCase();
      if (!rid) throw violation(`Twin request without $rid: ${message.topic}`);
      try {
        if (op === 'GET') {
          const properties = await twins.getProperties(session.deviceId, session.moduleId);
          viewOf(session).read(properties.desired);
          await respond(session, 200, rid, JSON.stringify(properties));
        } else if (op === 'PATCH/PROPERTIES/REPORTED') {
          let patch: unknown;
          try {
            patch = JSON.parse(message.payload.toString('utf8'));
          } catch {
            throw new HubError('ArgumentInvalid', 'The reported properties patch is not valid JSON');
          }
          const version = await twins.updateReportedProperties(session.deviceId, session.moduleId, patch);
          await respond(session, 204, rid, '', `&$version=${version}`);
        } else {
          throw violation(`Unsupported twin operation: ${message.topic}`);
        }
      } catch (e) {
        if (!(e instanceof HubError) || e.code === 'IotHubUnauthorizedAccess') throw e;
        await respond(session, e.status, rid, mqttErrorBody(e));
      }
    },
  };

  function forget(session: DeviceSession): void {
    const k = identityKey(session);
    const sessions = desiredSubscribers.get(k);
    sessions?.delete(session);
    if (sessions?.size === 0) desiredSubscribers.delete(k);
  }
}
