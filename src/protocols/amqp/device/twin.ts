import rhea, { type Message, type Receiver, type Sender } from 'rhea';
import { HubError } from '../../../core/errors.js';
import type { DeviceConnections } from '../../../hub/connections/deviceConnections.js';
import type { Twins } from '../../../hub/twins/twins.js';
import { DesiredView } from '../../../hub/twins/desiredView.js';
import { CreditQueue, type IncomingLink, type LinkRoute } from '../link.js';
import { messageBody } from '../messages.js';
import { Channels } from './channel.js';
import { deviceAddress, deviceLink } from './identity.js';

const DESIRED_NOTIFICATIONS = '/notifications/twin/properties/desired';

interface TwinChannel {
  out?: CreditQueue;
  /** Responses produced before the device's receiver attached. */
  early: Message[];
  desired: boolean;
  /** What the device saw of its desired properties, for the catch-up when it subscribes. */
  view: DesiredView;
  identity?: { deviceId: string; moduleId?: string };
}

/**
 * The twin over AMQP (`/devices/{id}[/modules/{mid}]/twin`): requests carry `operation` (GET,
 * PATCH reported, PUT/DELETE the desired-properties subscription) and `resource` as message
 * annotations; answers carry `status` (and `version`) annotations and the JSON body, correlated by
 * correlation id; desired-property changes arrive without one. Served by the Twins service.
 */
export function twinRoutes(twins: Twins, connections: DeviceConnections): LinkRoute[] {
  const channels = new Channels<TwinChannel>();
  const subscribers = new Set<TwinChannel>();
  twins.onDesiredPropertiesChange((change) => {
    for (const ch of subscribers) {
      if (!ch.identity || ch.identity.deviceId !== change.deviceId || (ch.identity.moduleId ?? undefined) !== (change.moduleId ?? undefined)) continue;
      ch.view.delivered(change.patch);
      sendPatch(ch, change.patch);
    }
  });
  const sendPatch = (ch: TwinChannel, patch: { $version: number }) =>
    send(ch, { body: rhea.message.data_section(Buffer.from(JSON.stringify(patch), 'utf8')), message_annotations: { version: patch.$version } });
  const send = (ch: TwinChannel, m: Message) => (ch.out ? ch.out.send(m) : ch.early.push(m));
  const address = deviceAddress('twin');

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
        const key = channels.key(link, incoming.address);
        const ch = channels.get(connection, key, () => ({ early: [], desired: false, view: new DesiredView() }));
        ch.identity = { deviceId, moduleId };
        ch.out = new CreditQueue(link);
        for (const early of ch.early.splice(0)) ch.out.send(early);
        link.on('sender_close', () => {
          subscribers.delete(ch);
          channels.delete(connection, key);
        });
        connection.onClose(() => subscribers.delete(ch));
      },
    },
    {
      role: 'receive',
      address,
      async open(incoming: IncomingLink<Receiver>, m) {
        const { link, connection } = incoming;
        link.set_target(link.target);
        const session = await deviceLink(connections, incoming, m);
        if (!session) return;
        const { deviceId, moduleId } = session;
        const key = channels.key(link, incoming.address);
        const ch = channels.get(connection, key, () => ({ early: [], desired: false, view: new DesiredView() }));
        ch.identity = { deviceId, moduleId };
        link.on('message', (context) => {
          context.delivery?.accept();
          session.activity();
          void handle(ch, context.message!, deviceId, moduleId).then((reply) => send(ch, reply));
        });
      },
    },
  ];

  async function handle(ch: TwinChannel, request: Message, deviceId: string, moduleId: string | undefined): Promise<Message> {
    const annotations = (request.message_annotations ?? {}) as Record<string, unknown>;
    const operation = String(annotations.operation ?? '').toUpperCase();
    const resource = annotations.resource === undefined ? undefined : String(annotations.resource);
    const reply = (status: number, body?: unknown, extra: Record<string, unknown> = {}): Message => ({
      correlation_id: request.correlation_id,
      message_annotations: { status, ...extra },
      body: rhea.message.data_section(Buffer.from(body === undefined ? '' : JSON.stringify(body), 'utf8')),
    });
    try {
      if (operation === 'GET' && !resource) {
        const properties = await twins.getProperties(deviceId, moduleId);
        ch.view.read(properties.desired);
        return reply(200, properties);
      }
      if (operation === 'PATCH' && resource === '/properties/reported') {
        let patch: unknown;
        try {
          patch = JSON.parse(messageBody(request).toString('utf8'));
        } catch {
          throw new HubError('ArgumentInvalid', 'The reported properties patch is not valid JSON');
        }
        const version = await twins.updateReportedProperties(deviceId, moduleId, patch);
        return reply(204, undefined, { version: rhea.types.wrap_long(version) });
      }
      if ((operation === 'PUT' || operation === 'DELETE') && resource === DESIRED_NOTIFICATIONS) {
        ch.desired = operation === 'PUT';
        if (ch.desired) subscribers.add(ch);
        else subscribers.delete(ch);
        if (ch.desired) {
          // After the answer: what changed since the device's twin GET (a patch it would otherwise miss).
          setImmediate(() => {
            ch.view
              .catchUp(twins, deviceId, moduleId)
              .then((patch) => patch && ch.desired && sendPatch(ch, patch))
              .catch(() => undefined);
          });
        }
        return reply(200);
      }
      return reply(400, { message: `Unsupported twin operation '${operation}' on '${resource ?? ''}'` });
    } catch (e) {
      if (e instanceof HubError) return reply(e.status, { errorCode: e.code, message: e.message });
      return reply(500, { message: 'Internal error' });
    }
  }
}
