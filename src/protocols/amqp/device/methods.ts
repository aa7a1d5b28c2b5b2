import rhea, { type Receiver, type Sender } from 'rhea';
import type { DeviceConnections } from '../../../hub/connections/deviceConnections.js';
import type { DirectMethods } from '../../../hub/methods/methods.js';
import { CreditQueue, type IncomingLink, type LinkRoute } from '../link.js';
import { messageBody, messageId } from '../messages.js';
import { deviceAddress, deviceLink } from './identity.js';

/**
 * Direct methods over AMQP (`/devices/{id}[/modules/{mid}]/methods/devicebound`): requests go
 * out on the device's receiving link with the method name in `IoThub-methodname` and the request
 * id as correlation id; answers come back on its sending link with `IoThub-status`. The
 * DirectMethods service does the rest, as for MQTT.
 */
export function methodRoutes(methods: DirectMethods, connections: DeviceConnections): LinkRoute[] {
  const address = deviceAddress('methods/devicebound');
  return [
    {
      role: 'send',
      address,
      async open(incoming: IncomingLink<Sender>, m) {
        const { link, connection } = incoming;
        link.set_source(link.source);
        const device = await deviceLink(connections, incoming, m);
        if (!device) return;
        const { deviceId, moduleId } = device;
        const out = new CreditQueue(link);
        const detach = methods.attach(deviceId, moduleId, {
          send: async (request) => {
            if (!link.is_open()) throw new Error('link closed');
            out.send({
              correlation_id: request.requestId,
              application_properties: { 'IoThub-methodname': request.methodName },
              body: rhea.message.data_section(request.payload),
            });
          },
        });
        link.on('sender_close', detach);
        connection.onClose(detach);
      },
    },
    {
      role: 'receive',
      address,
      async open(incoming: IncomingLink<Receiver>, m) {
        const { link } = incoming;
        link.set_target(link.target);
        const session = await deviceLink(connections, incoming, m);
        if (!session) return;
        const { deviceId, moduleId } = session;
        link.on('message', (context) => {
          const message = context.message!;
          context.delivery?.accept();
          session.activity();
          const status = Number((message.application_properties ?? {})['IoThub-status']);
          const requestId = messageId(message.correlation_id);
          if (requestId !== undefined && Number.isInteger(status)) methods.respond(deviceId, moduleId, requestId, status, messageBody(message));
        });
      },
    },
  ];
}
