import type { Connection, Message, Receiver, Sender } from 'rhea';
import type { Logger } from 'pino';
import type { ConnectionClaims } from './claims.js';

/** One client AMQP connection as the link families see it. */
export interface ClientConnection {
  readonly id: string;
  readonly rhea: Connection;
  readonly claims: ConnectionClaims;
  readonly logger: Logger;
  /** Called once when the connection ends, however it ends. */
  onClose(listener: () => void): void;
  /** Counts the connection against its peer's address as a failed one (once, however often called): credentials refused on it. */
  refusedCredentials(): void;
}

/** A link the client attached, as handed to the family that owns its address. */
export interface IncomingLink<L extends Sender | Receiver = Sender | Receiver> {
  connection: ClientConnection;
  link: L;
  /** The source address (links the hub sends on) or target address (links the hub receives on). */
  address: string;
}

/**
 * A family of addresses, in the manner of the MQTT topic handlers: the router hands every attach
 * whose address matches `address` to `open`, which sets the link up (or closes it with an
 * AMQP error) and calls one domain service per message.
 */
export interface LinkRoute {
  /** 'send': the client attached a receiver and the hub sends on it; 'receive': the reverse. */
  role: 'send' | 'receive';
  address: RegExp;
  /**
   * Links the hub receives on get credit at most at the connection's rate (config
   * `connections.packetsPerConnectionSecond`): device telemetry, where one device must not take the
   * hub from the others. Not for the namespaces' senders, which are applications, not devices.
   */
  pacedCredit?: boolean;
  /** When set, the family only takes links on connections it accepts (Service Bus namespaces: connections bound to one). */
  accepts?(connection: ClientConnection): boolean;
  open(link: IncomingLink<any>, match: RegExpExecArray): void | Promise<void>;
}

/**
 * Sends on a link as credit allows, queueing the rest (responses on request/response nodes,
 * where the client grants credit as it pleases).
 */
export class CreditQueue {
  private readonly queue: Message[] = [];

  constructor(private readonly sender: Sender) {
    sender.on('sendable', () => this.flush());
  }

  send(message: Message): void {
    this.queue.push(message);
    this.flush();
  }

  private flush(): void {
    while (this.queue.length > 0 && this.sender.is_open() && this.sender.sendable()) {
      this.sender.send(this.queue.shift()!);
    }
  }
}
