/**
 * A raw AMQP 1.0 client (rhea) for what the Azure SDKs cannot send: bad tokens, unknown
 * addresses, hand-made requests. Promise-based helpers, nothing of the server's.
 */
import { createHmac } from 'node:crypto';
import rhea, { type Connection, type ConnectionOptions, type Message, type Receiver, type Sender } from 'rhea';
import { encodeUriComponentStrict } from '../../src/core/sas.js';

export interface RawAmqp {
  connection: Connection;
  /** Sends a request on a request/response node and resolves with the reply. */
  request(node: string, message: Message): Promise<Message>;
  /** Attaches a receiver; resolves when attached, rejects with the detach error. */
  receiver(address: string, options?: Record<string, unknown>): Promise<Receiver>;
  sender(address: string, options?: Record<string, unknown>): Promise<Sender>;
  close(): Promise<void>;
}

export function connectAmqp(host: string, options: Partial<ConnectionOptions> & { port?: number; tls?: boolean } = {}): Promise<RawAmqp> {
  const container = rhea.create_container();
  const { tls = true, port = tls ? 5671 : 5672, ...rest } = options;
  const connection = container.connect({
    host,
    port,
    ...(tls ? { transport: 'tls', servername: undefined } : {}),
    reconnect: false,
    ...rest,
  } as ConnectionOptions);
  container.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    connection.once('connection_open', () => resolve(wrap(connection)));
    connection.once('connection_error', (ctx) => reject(ctx.connection.error ?? new Error('connection error')));
    connection.once('disconnected', (ctx) => reject(ctx.error ?? new Error('disconnected')));
  });
}

let counter = 0;

function wrap(connection: Connection): RawAmqp {
  const replyLinks = new Map<string, { receiver: Receiver; pending: Map<string, (m: Message) => void> }>();
  const self: RawAmqp = {
    connection,
    async request(node, message) {
      let rr = replyLinks.get(node);
      if (!rr) {
        const replyTo = `reply-${++counter}`;
        const pending = new Map<string, (m: Message) => void>();
        const receiver = await self.receiver(node, { name: replyTo, target: { address: replyTo } });
        receiver.on('message', (ctx) => {
          const id = String(ctx.message!.correlation_id);
          pending.get(id)?.(ctx.message!);
          pending.delete(id);
        });
        rr = { receiver, pending };
        replyLinks.set(node, rr);
      }
      const sender = await self.sender(node);
      const id = `req-${++counter}`;
      const { pending } = rr;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        sender.send({ ...message, message_id: id, reply_to: (rr!.receiver.target as { address: string }).address });
      });
    },
    receiver(address, options = {}) {
      const receiver = connection.open_receiver({ source: { address }, ...options } as never);
      return attached(receiver, 'receiver');
    },
    sender(address, options = {}) {
      const sender = connection.open_sender({ target: { address }, ...options } as never);
      return attached(sender, 'sender');
    },
    close() {
      return new Promise((resolve) => {
        if (connection.is_closed()) return resolve();
        connection.once('connection_close', () => resolve());
        connection.once('disconnected', () => resolve());
        connection.close();
      });
    },
  };
  return self;
}

function attached<L extends Sender | Receiver>(link: L, kind: 'sender' | 'receiver'): Promise<L> {
  return new Promise((resolve, reject) => {
    // An attach followed by a detach with an error is the server refusing the link.
    link.once(`${kind}_open`, () => setTimeout(() => (link.is_closed() ? reject(link.error) : resolve(link)), 50));
    link.once(`${kind}_close`, () => reject(link.error ?? new Error('link closed')));
    link.once(`${kind}_error`, () => reject(link.error));
  });
}

/** Detach error of a link, once it comes. */
export function linkClosed(link: Sender | Receiver): Promise<{ condition?: string; description?: string } | undefined> {
  return new Promise((resolve) => {
    const kind = link.is_receiver() ? 'receiver' : 'sender';
    link.once(`${kind}_close`, () => resolve(link.error as never));
  });
}

/** A SAS token as the Event Hubs and Service Bus SDKs sign it (HMAC keyed with the key's text). */
export function namespaceSas(resource: string, keyName: string, key: string, ttlSeconds = 3600): string {
  const sr = encodeUriComponentStrict(resource);
  const se = Math.floor(Date.now() / 1000) + ttlSeconds;
  const sig = encodeUriComponentStrict(createHmac('sha256', key).update(`${sr}\n${se}`).digest('base64'));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}&skn=${keyName}`;
}

export function putToken(c: RawAmqp, audience: string, token: string): Promise<Message> {
  return c.request('$cbs', { application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: audience }, body: token });
}

/**
 * Two connections each put a SAS token for `audience` that expires within 2 to 3 seconds (SAS
 * expiries are whole seconds) and attach a receiver at `address`; after a second the first puts a
 * new token (a renewal, as the SDKs make one). What became of each link 4 s later: the lapsed one's
 * detach error, and whether the renewed one is still open.
 */
export async function linksAcrossSasExpiry(
  connect: () => Promise<RawAmqp>,
  audience: string,
  token: (ttlSeconds: number) => string,
  address: string,
): Promise<{ lapsed: { condition?: string; description?: string } | 'still open'; renewed: 'open' | 'closed' }> {
  const [renewing, lapsing] = [await connect(), await connect()];
  try {
    const links: Receiver[] = [];
    for (const c of [renewing, lapsing]) {
      const put = await putToken(c, audience, token(3));
      if (put.application_properties?.['status-code'] !== 200) throw new Error(`put-token: ${JSON.stringify(put.application_properties)}`);
      links.push(await c.receiver(address));
    }
    const [kept, lapsed] = links as [Receiver, Receiver];
    let keptClosed = false;
    void linkClosed(kept).then(() => (keptClosed = true));
    const lapsedClosed = linkClosed(lapsed);
    await new Promise((r) => setTimeout(r, 1000));
    const renewal = await putToken(renewing, audience, token(60));
    if (renewal.application_properties?.['status-code'] !== 200) throw new Error(`renewal: ${JSON.stringify(renewal.application_properties)}`);
    const error = await Promise.race([lapsedClosed.then((e) => e ?? {}), new Promise<'still open'>((r) => setTimeout(() => r('still open'), 3000))]);
    await new Promise((r) => setTimeout(r, 300));
    return { lapsed: error, renewed: keptClosed || !kept.is_open() ? 'closed' : 'open' };
  } finally {
    await renewing.close();
    await lapsing.close();
  }
}
