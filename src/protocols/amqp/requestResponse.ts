import type { Message, Receiver, Sender } from 'rhea';
import { CreditQueue, type ClientConnection, type IncomingLink, type LinkRoute } from './link.js';

export interface Reply {
  statusCode: number;
  statusDescription: string;
  body?: unknown;
  applicationProperties?: Record<string, unknown>;
}

/** Handles one request on a request/response node ($cbs, $management). */
export type RequestHandler = (connection: ClientConnection, request: Message) => Promise<Reply>;

/**
 * A request/response node as Service Bus defines it: requests arrive on a link whose target is
 * the node; each reply goes back, correlated by the request's message id, on the client's
 * receiving link whose target address (or name) is the request's reply-to.
 */
export function requestResponseNode(address: RegExp, handle: RequestHandler): LinkRoute[] {
  const replyLinks = new WeakMap<ClientConnection, { name: string; target?: string; queue: CreditQueue; sender: Sender }[]>();
  const linksOf = (c: ClientConnection) => {
    let links = replyLinks.get(c);
    if (!links) replyLinks.set(c, (links = []));
    return links;
  };
  return [
    {
      role: 'send',
      address,
      open({ connection, link }: IncomingLink<Sender>) {
        link.set_source(link.source);
        link.set_target(link.target);
        const entry = { name: link.name, target: (link.target as { address?: string } | undefined)?.address, queue: new CreditQueue(link), sender: link };
        linksOf(connection).push(entry);
        link.on('sender_close', () => {
          const links = linksOf(connection);
          links.splice(links.indexOf(entry), 1);
        });
      },
    },
    {
      role: 'receive',
      address,
      open({ connection, link }: IncomingLink<Receiver>) {
        link.set_source(link.source);
        link.set_target(link.target);
        link.on('message', (context) => {
          const request = context.message!;
          context.delivery?.accept();
          void handle(connection, request)
            .catch((): Reply => ({ statusCode: 500, statusDescription: 'Internal error' }))
            .then((reply) => {
              const links = linksOf(connection).filter((l) => l.sender.is_open());
              const to = request.reply_to;
              const target = links.find((l) => l.target === to || l.name === to) ?? links[0];
              if (!target) return;
              target.queue.send({
                correlation_id: request.message_id,
                to,
                application_properties: {
                  'status-code': reply.statusCode,
                  'status-description': reply.statusDescription,
                  ...reply.applicationProperties,
                },
                body: reply.body,
              });
            });
        });
      },
    },
  ];
}
