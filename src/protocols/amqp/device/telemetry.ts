import type { Receiver } from 'rhea';
import { HubError } from '../../../core/errors.js';
import type { DeviceConnections } from '../../../hub/connections/deviceConnections.js';
import type { Telemetry } from '../../../hub/messaging/telemetry.js';
import { amqpError } from '../errors.js';
import type { IncomingLink, LinkRoute } from '../link.js';
import { messageBody, messageId, stringProperties } from '../messages.js';
import { deviceAddress, deviceLink } from './identity.js';

/**
 * Device-to-cloud telemetry (`/devices/{id}[/modules/{mid}]/messages/events`): each message goes
 * through the same Telemetry service as MQTT's and is accepted once committed to the event log.
 */
export function telemetryRoute(telemetry: Telemetry, connections: DeviceConnections): LinkRoute {
  return {
    role: 'receive',
    address: deviceAddress('messages/events'),
    pacedCredit: true,
    async open(incoming: IncomingLink<Receiver>, m) {
      const { link } = incoming;
      link.set_target(link.target);
      const session = await deviceLink(connections, incoming, m);
      if (!session) return;
      link.on('message', (context) => {
        const message = context.message!;
        const delivery = context.delivery!;
        session.activity();
        const expiry = message.absolute_expiry_time as unknown;
        void telemetry
          .send(session.identity, {
            body: messageBody(message),
            messageId: messageId(message.message_id),
            correlationId: messageId(message.correlation_id),
            userId: message.user_id === undefined ? undefined : Buffer.isBuffer(message.user_id) ? message.user_id.toString('utf8') : String(message.user_id),
            to: typeof message.to === 'string' ? message.to : undefined,
            contentType: message.content_type,
            contentEncoding: message.content_encoding,
            expiryTimeUtc: expiry === undefined ? undefined : new Date(expiry as Date).toISOString(),
            properties: stringProperties(message.application_properties),
          })
          .then(
            () => delivery.accept(),
            (e) => delivery.reject(e instanceof HubError ? amqpError(e) : { condition: 'amqp:internal-error', description: 'Internal error' }),
          );
      });
    },
  };
}
