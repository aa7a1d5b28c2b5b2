import type { Duplex } from 'node:stream';
import mqttPacket, { type IConnectPacket, type IPublishPacket, type ISubscribePacket, type IUnsubscribePacket, type Packet } from 'mqtt-packet';
import type { Logger } from 'pino';
import type { ConnectionHandle, ConnectedIdentity } from '../../hub/connections/deviceConnections.js';
import type { DeviceSession, TopicHandler } from './handler.js';
import { authenticateConnect, ConnackCode, type ClientCertificate, type ConnectContext } from './connect.js';
import { topicBelongsTo } from './topics.js';
import { DPS_RESPONSE_FILTER, type DpsConnection, type DpsMqtt } from './dps.js';
import type { PersistentSessions } from './persistentSessions.js';
import type { IngestBudget, TurnBudget } from './ingestBudget.js';
import { PacketRate } from '../packetRate.js';
import { identityKey } from './requestTopics.js';
import { RefusalLog } from '../refusalLog.js';
import { decodeWholePacket } from './wholePacket.js';

/** Refused CONNECTs of the whole process: a flood of bad credentials logs a line a minute. */
const refusals = new RefusalLog();

/**
 * Largest packet read at all. IoT Hub's message limit is 256 KB (checked precisely by the
 * telemetry service); anything far beyond it is refused before it is buffered.
 */
export const MAX_PACKET_BYTES = 256 * 1024 + 64 * 1024;
/** IoT Hub's longest keep-alive; a client asking for more (or for none) gets this. */
export const MAX_KEEPALIVE_SECONDS = 1177;
/** A connection that has not sent CONNECT by then is closed (SessionContext.connectTimeoutMs overrides it). */
const CONNECT_TIMEOUT_MS = 30_000;
/** Reading pauses while this many QoS 1 publishes await their commit (back-pressure on a flooding device). */
const MAX_PENDING_ACKS = 1000;
/**
 * Packets one connection may hand the hub in one event-loop turn, unless the hub's TurnBudget says
 * otherwise (config `connections.packetsPerConnectionTurn`). A device that floods (or never reads
 * its PUBACKs) delivers hundreds of publishes per read; past this many the rest of its read waits
 * for a coming turn, so that one connection cannot make every other device's commit and PUBACK
 * wait behind it. (All connections together: SessionContext.turnBudget.)
 */
export const MAX_PUBLISHES_PER_TURN = 8;
/** Packets a device may pipeline behind CONNECT while it is being authenticated. */
const MAX_EARLY_PACKETS = 100;

export interface SessionContext extends ConnectContext {
  handlers: readonly TopicHandler[];
  logger: Logger;
  /** Device registration (DPS) on the same listener, when the provisioning service is on. */
  dps?: DpsMqtt;
  /** Subscriptions of CleanSession 0 sessions, kept across connections. */
  persistentSessions?: PersistentSessions;
  /** Config `connections.connectTimeoutMs`. */
  connectTimeoutMs?: number;
  /** Shared by every connection of the listener(s): bounds what all of them hold unsettled. */
  ingestBudget?: IngestBudget;
  /** Shared by every connection of the hub: bounds the packets handled per event-loop turn. */
  turnBudget?: TurnBudget;
  /** Config `connections.packetsPerConnectionSecond`: each connection's ceiling on packets read per second (PacketRate); 0 or absent: none. */
  packetsPerConnectionSecond?: number;
}

/** 'refused': CONNACK with a refusal sent, closing once it is flushed; nothing more is read. */
type State = 'awaitingConnect' | 'authenticating' | 'connected' | 'refused' | 'closed';

/**
 * One device connection over MQTT 3.1.1 (TLS or WebSocket): reads packets, authenticates CONNECT,
 * enforces keep-alive and per-device topic authorization, and routes PUBLISH/SUBSCRIBE to the
 * topic handlers. Any protocol violation closes the connection, which is IoT Hub's only answer.
 */
export class MqttSession implements DeviceSession {
  deviceId = '';
  moduleId?: string;
  authMethod = '';
  generationId = '';
  identity?: ConnectedIdentity;

  private state: State = 'awaitingConnect';
  private keepAliveMs = 0;
  private keepAliveTimer?: NodeJS.Timeout;
  /** When the SAS token expires (ms since the epoch); the keep-alive timer watches it too. */
  private expiresAt = Infinity;
  private lastPacketAt = 0;
  private readonly early: Packet[] = [];
  private handle?: ConnectionHandle;
  private nextPacketId = 1;
  private readonly inflight = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  /** QoS 1 PUBACKs go out in the order the PUBLISHes came in (MQTT-4.6.0-2), whenever each commits. */
  private readonly acks: { messageId: number; done: boolean }[] = [];
  private paused = false;
  /** Reading stopped because the process-wide ingest budget is spent (see IngestBudget). */
  private heldByBudget = false;
  private readonly resumeFromBudget = () => {
    this.heldByBudget = false;
    this.resumeReading();
  };
  /** The rest of a read past the connection's share of a turn or the hub's turn budget, handled in a coming turn (reading is paused meanwhile). */
  private deferred?: Buffer;
  /** A packet split across reads: the reads so far, and how many bytes it needs in all (header included). */
  private partial?: { parts: Buffer[]; bytes: number; need: number };
  private readonly closeListeners: (() => void)[] = [];
  /** The Will from CONNECT: sent as telemetry if the connection ends without DISCONNECT. */
  private will?: { topic: string; payload: Buffer };
  /** Set when this connection is a DPS registration rather than a device. */
  private dpsConnection?: DpsConnection;
  /** CleanSession 0: subscriptions outlive the connection. */
  private persistent = false;
  /** The last topic routed and its handler (deviceId and moduleId do not change once connected). */
  private lastRoute?: { topic: string; handler: TopicHandler | undefined };
  /** This connection's ceiling on packets read per second, if the hub sets one. */
  private readonly rate?: PacketRate;

  constructor(
    private readonly stream: Duplex,
    private readonly context: SessionContext,
    private readonly clientCertificate: () => ClientCertificate | undefined,
    private readonly remote: string,
    /** Counts this connection against its address's failures (garbage, bad credentials, no CONNECT). */
    private readonly failed?: () => void,
  ) {
    if (context.packetsPerConnectionSecond) this.rate = new PacketRate(context.packetsPerConnectionSecond);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (e) => this.close(`network error: ${e.message}`));
    stream.on('close', () => this.close('connection closed by the device'));
    this.armTimer(context.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, 'no CONNECT in time', true);
  }

  /** Closes for a fault of the peer's; before CONNACK it counts against the peer's address. */
  private fail(reason: string): void {
    if (this.state === 'awaitingConnect' || this.state === 'authenticating') this.failed?.();
    this.close(reason);
  }

  /**
   * Frames what the device sent into packets: complete QoS 0/1 PUBLISHes are decoded here (the hot
   * path), anything else is handed to mqtt-packet one whole packet at a time, so that its checks
   * apply and it never holds a partial packet. A packet split across reads waits in `partial`.
   * At most the turn budget's `perConnection` (MAX_PUBLISHES_PER_TURN without one) packets are
   * taken per read, and none once the hub's turn budget is spent; the rest waits for a coming turn.
   * Past the connection's packet rate the rest waits until the rate allows one more.
   */
  private onData(chunk: Buffer): void {
    if (this.state === 'closed' || this.state === 'refused') return;
    // Reading is paused while a read waits for its turn; anything that still arrives goes behind it.
    if (this.deferred) {
      this.deferred = Buffer.concat([this.deferred, chunk]);
      return;
    }
    if (this.partial) {
      const partial = this.partial;
      partial.parts.push(chunk);
      partial.bytes += chunk.length;
      if (partial.bytes < partial.need) return;
      this.partial = undefined;
      chunk = partial.parts.length === 1 ? partial.parts[0]! : Buffer.concat(partial.parts, partial.bytes);
    }
    let at = 0;
    let taken = 0;
    const budget = this.context.turnBudget;
    const share = budget?.perConnection ?? MAX_PUBLISHES_PER_TURN;
    while (at < chunk.length && this.reading()) {
      // Fixed header: the type and flags byte, then a remaining length of 1 to 4 bytes of 7 bits.
      let length = 0;
      let i = at + 1;
      let shift = 1;
      let done = false;
      for (; i < chunk.length && i < at + 5; i++) {
        const b = chunk[i]!;
        length += (b & 0x7f) * shift;
        shift *= 128;
        if ((b & 0x80) === 0) {
          done = true;
          i++;
          break;
        }
      }
      if (!done && i === at + 5) return this.fail('malformed packet: remaining length longer than 4 bytes');
      if (length > MAX_PACKET_BYTES) return this.fail(`packet of ${length} bytes exceeds the limit`);
      // Incomplete (header or body): kept until the rest arrives; a short tail is copied so that it
      // does not hold the whole read's buffer.
      const end = i + length;
      if (!done || end > chunk.length) {
        const tail = chunk.length - at < 1024 ? Buffer.from(chunk.subarray(at)) : chunk.subarray(at);
        this.partial = { parts: [tail], bytes: tail.length, need: done ? end - at : tail.length + 1 };
        return;
      }
      const wait = this.rate ? this.rate.wait() : 0;
      if (wait > 0) return this.defer(chunk.subarray(at), wait);
      if (taken === share || budget?.take() === false) return this.defer(chunk.subarray(at));
      taken++;
      this.rate?.spend();
      const flags = chunk[at]!;
      if ((flags === 0x32 || flags === 0x30) && this.state === 'connected' && length >= 2) this.fastPublish(chunk, at, i, end);
      else this.decode(chunk.subarray(at, end));
      at = end;
    }
  }

  /** A whole packet off the hot path, through mqtt-packet: handled, or the connection closed for it. */
  private decode(bytes: Buffer): void {
    const packet = decodeWholePacket(bytes);
    if (packet instanceof Error) this.fail(`malformed packet: ${packet.message}`);
    else this.onPacket(packet);
  }

  /** Whether what the device sends is still read (not once closed or refused). */
  private reading(): boolean {
    return this.state !== 'closed' && this.state !== 'refused';
  }

  /**
   * Leaves the rest of a read for a coming turn, in the hub's queue of held reads (see TurnBudget),
   * or for `afterMs` (the connection's packet rate), reading paused meanwhile.
   */
  private defer(rest: Buffer, afterMs?: number): void {
    this.deferred = rest;
    this.stream.pause();
    const resume = () => {
      const chunk = this.deferred!;
      this.deferred = undefined;
      this.onData(chunk);
      if (!this.deferred) this.resumeReading();
    };
    if (afterMs !== undefined) setTimeout(resume, Math.ceil(afterMs));
    else if (this.context.turnBudget) this.context.turnBudget.wait(resume);
    else setImmediate(resume);
  }

  /** Reads again unless something else still holds reading: pending PUBACKs, the ingest budget, a deferred read. */
  private resumeReading(): void {
    if (!this.paused && !this.heldByBudget && !this.deferred && this.state !== 'closed') this.stream.resume();
  }

  /**
   * The connection's logger, made when something logs: a child logger kept per connection costs
   * memory on every idle device, and most log calls (info, debug) write nothing in production.
   */
  private get log(): Logger {
    return this.context.logger.child({ remote: this.remote });
  }

  private logs(level: 'info' | 'debug'): boolean {
    return this.context.logger.isLevelEnabled(level);
  }

  publish(topic: string, payload: Buffer | string, qos: 0 | 1 = 0): Promise<void> {
    if (this.state !== 'connected') return Promise.reject(new Error('the device is not connected'));
    if (qos === 0) {
      this.send({ cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false });
      return Promise.resolve();
    }
    const messageId = this.allocatePacketId();
    return new Promise((resolve, reject) => {
      this.inflight.set(messageId, { resolve, reject });
      this.send({ cmd: 'publish', topic, payload, qos: 1, dup: false, retain: false, messageId });
    });
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    clearTimeout(this.keepAliveTimer);
    this.context.ingestBudget?.withdraw(this.resumeFromBudget);
    this.stream.destroy();
    if (wasConnected && this.logs('info')) this.log.info({ deviceId: this.deviceId, moduleId: this.moduleId, reason }, 'device disconnected');
    else if (this.logs('debug')) this.log.debug({ reason }, 'connection closed before it was established');
    for (const p of this.inflight.values()) p.reject(new Error(`the connection closed: ${reason}`));
    this.inflight.clear();
    this.handle?.disconnected();
    if (wasConnected && reason !== 'DISCONNECT') this.sendWill();
    for (const listener of this.closeListeners.splice(0)) {
      try {
        listener();
      } catch (e) {
        this.log.error({ err: e }, 'close listener failed');
      }
    }
  }

  /** The hub is stopping: close without sending the Will (the event log is closing too). */
  shutdown(): void {
    this.will = undefined;
    this.close('the hub is shutting down');
  }

  onClose(listener: () => void): void {
    if (this.state === 'closed') queueMicrotask(listener);
    else this.closeListeners.push(listener);
  }

  private onPacket(packet: Packet): void {
    if (this.state === 'closed' || this.state === 'refused') return;
    if (this.state === 'awaitingConnect') {
      if (packet.cmd !== 'connect') return this.fail(`expected CONNECT, got ${packet.cmd.toUpperCase()}`);
      this.state = 'authenticating';
      this.connect(packet).catch((e) => {
        this.log.error({ err: e }, 'CONNECT failed');
        if (this.state === 'authenticating') this.refuse(ConnackCode.ServerUnavailable, 'internal error');
        else this.close('internal error during CONNECT');
      });
      return;
    }
    if (this.state === 'authenticating') {
      if (this.early.push(packet) > MAX_EARLY_PACKETS) this.fail('too many packets before CONNACK');
      return;
    }
    this.dispatch(packet);
  }

  private async connect(packet: IConnectPacket): Promise<void> {
    // A client certificate counts only without a password: don't fetch the peer's chain otherwise.
    const certificate = packet.password === undefined ? this.clientCertificate() : undefined;
    const dps = this.context.dps?.parse(packet.clientId, packet.username, packet.password, certificate);
    if (dps) return this.connectDps(packet, dps);
    const result = await authenticateConnect(packet, certificate, this.context);
    if (this.state !== 'authenticating') return;
    if ('refused' in result) return this.refuse(result.refused, result.reason);
    const { identity } = result;
    this.identity = identity;
    this.deviceId = identity.deviceId;
    this.moduleId = identity.moduleId;
    this.generationId = identity.generationId;
    this.authMethod = identity.authMethod.type === 'sas' ? 'sas' : 'x509';
    this.handle = await this.context.connections.connected(identity, this);
    if (this.state !== 'authenticating') {
      this.handle.disconnected();
      return;
    }
    this.state = 'connected';
    this.closeAtExpiry(identity.expiresAt);
    if (packet.will) this.acceptWill(packet.will.topic, packet.will.payload);
    const keepalive = packet.keepalive && packet.keepalive <= MAX_KEEPALIVE_SECONDS ? packet.keepalive : MAX_KEEPALIVE_SECONDS;
    this.keepAliveMs = keepalive * 1500;
    this.lastPacketAt = Date.now();
    this.armKeepAlive(this.keepAliveMs);
    const sessions = this.context.persistentSessions;
    this.persistent = !packet.clean && sessions !== undefined;
    if (!this.persistent) sessions?.discard(this.sessionKey());
    const kept = this.persistent ? sessions!.get(this.sessionKey()) : [];
    this.send({ cmd: 'connack', returnCode: ConnackCode.Accepted, sessionPresent: kept.length > 0 });
    if (this.logs('info')) this.log.info({ deviceId: this.deviceId, moduleId: this.moduleId, auth: identity.authMethod.type, sessionPresent: kept.length > 0 }, 'device connected');
    for (const [filter, qos] of kept) {
      const handler = this.route(filter);
      if (!handler?.subscribe) continue;
      try {
        await handler.subscribe(this, filter, qos);
      } catch (e) {
        return this.close(`restoring the subscription to '${filter}' failed: ${(e as Error).message}`);
      }
    }
    for (const p of this.early.splice(0)) this.dispatch(p);
  }

  /** A registration connection: no device identity, only DPS's request and response topics. */
  private async connectDps(packet: IConnectPacket, dps: DpsConnection): Promise<void> {
    if (packet.protocolId !== 'MQTT' || packet.protocolVersion !== 4) {
      return this.refuse(ConnackCode.UnacceptableProtocolVersion, `protocol ${packet.protocolId} ${packet.protocolVersion}`);
    }
    const ok = await this.context.dps!.authenticate(dps);
    if (this.state !== 'authenticating') return;
    if (!ok) return this.refuse(ConnackCode.NotAuthorized, 'the registration credential does not attest');
    this.dpsConnection = dps;
    this.state = 'connected';
    const keepalive = packet.keepalive && packet.keepalive <= MAX_KEEPALIVE_SECONDS ? packet.keepalive : MAX_KEEPALIVE_SECONDS;
    this.keepAliveMs = keepalive * 1500;
    this.lastPacketAt = Date.now();
    this.armKeepAlive(this.keepAliveMs);
    this.send({ cmd: 'connack', returnCode: ConnackCode.Accepted, sessionPresent: false });
    this.log.debug({ registrationId: dps.registrationId }, 'DPS registration connected');
    for (const p of this.early.splice(0)) this.dispatch(p);
  }

  private onDpsPublish(packet: IPublishPacket, dps: DpsConnection): void {
    if (packet.qos === 2) return this.close('QoS 2 is not supported');
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    if (packet.qos === 1) this.send({ cmd: 'puback', messageId: packet.messageId! });
    this.context
      .dps!.request(dps, packet.topic, payload)
      .then((answer) => {
        if (!answer) return this.close(`publishing to '${packet.topic}' is not allowed`);
        return this.publish(answer.topic, answer.body, 1);
      })
      .catch((e: Error) => this.log.debug({ err: e.message }, 'DPS answer not delivered'));
  }

  private refuse(code: ConnackCode, reason: string): void {
    refusals.note(this.log, { code, reason }, 'CONNECT refused');
    // The hub's own trouble (server unavailable) is not the peer's failure.
    if (code !== ConnackCode.ServerUnavailable) this.failed?.();
    this.send({ cmd: 'connack', returnCode: code, sessionPresent: false });
    this.state = 'refused';
    // Let the CONNACK reach the device before the connection closes (but not wait on it forever).
    this.stream.end(() => this.close(`refused: ${reason}`));
    this.armTimer(5000, `refused: ${reason}`);
  }

  private dispatch(packet: Packet): void {
    if (this.state !== 'connected') return;
    this.lastPacketAt = Date.now();
    this.handle?.activity();
    switch (packet.cmd) {
      case 'publish':
        return this.onPublish(packet);
      case 'puback': {
        const p = packet.messageId === undefined ? undefined : this.inflight.get(packet.messageId);
        if (!p) return;
        this.inflight.delete(packet.messageId!);
        return p.resolve();
      }
      case 'subscribe':
        return void this.onSubscribe(packet).catch((e: Error) => this.close(`SUBSCRIBE failed: ${e.message}`));
      case 'unsubscribe':
        return void this.onUnsubscribe(packet).catch((e: Error) => this.close(`UNSUBSCRIBE failed: ${e.message}`));
      case 'pingreq':
        return this.send({ cmd: 'pingresp' });
      case 'disconnect':
        return this.close('DISCONNECT');
      default:
        // QoS 2 flows, a second CONNECT, server-to-client packets: not for IoT Hub.
        return this.close(`unexpected ${packet.cmd.toUpperCase()}`);
    }
  }

  private onPublish(packet: IPublishPacket): void {
    if (this.dpsConnection) return this.onDpsPublish(packet, this.dpsConnection);
    if (packet.qos === 2) return this.close('QoS 2 is not supported');
    const handler = this.route(packet.topic);
    if (!handler?.publish) return this.close(`publishing to '${packet.topic}' is not allowed`);
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const slot = packet.qos === 1 ? { messageId: packet.messageId!, done: false } : undefined;
    if (slot) {
      this.acks.push(slot);
      if (this.acks.length >= MAX_PENDING_ACKS && !this.paused) {
        this.paused = true;
        this.stream.pause();
      }
    }
    const budget = this.context.ingestBudget;
    const cost = budget ? budget.take(payload.length) : 0;
    if (budget?.spent && !this.heldByBudget) {
      this.heldByBudget = true;
      this.stream.pause();
      budget.wait(this.resumeFromBudget);
    }
    // A handler that throws (even synchronously) costs this connection, never the process.
    let committed: Promise<void>;
    try {
      committed = handler.publish(this, { topic: packet.topic, payload, qos: packet.qos as 0 | 1, retain: packet.retain });
    } catch (e) {
      committed = Promise.reject(e);
    }
    committed.then(
      () => {
        if (budget) budget.give(cost);
        if (!slot) return;
        slot.done = true;
        this.flushAcks();
      },
      (e: Error) => {
        if (budget) budget.give(cost);
        this.close(`publish to '${packet.topic}' refused: ${e.message}`);
      },
    );
  }

  /**
   * The hot path: a complete PUBLISH (QoS 0 or 1, no DUP or RETAIN flag) in chunk[at, end), its
   * variable header from `start`, decoded as mqtt-packet would decode it, without its buffer list,
   * debug calls and state machine. One whose topic runs past its end goes to mqtt-packet, whose
   * error closes the connection.
   */
  private fastPublish(chunk: Buffer, at: number, start: number, end: number): void {
    const qos = chunk[at] === 0x32 ? 1 : 0;
    const length = end - start;
    const topicLength = chunk.readUInt16BE(start);
    const payloadStart = start + 2 + topicLength + (qos === 1 ? 2 : 0);
    if (payloadStart > end) {
      this.decode(chunk.subarray(at, end));
      return;
    }
    const packet: IPublishPacket = {
      cmd: 'publish',
      retain: false,
      qos,
      dup: false,
      length,
      topic: chunk.toString('utf8', start + 2, start + 2 + topicLength),
      payload: chunk.subarray(payloadStart, end),
    };
    if (qos === 1) packet.messageId = chunk.readUInt16BE(start + 2 + topicLength);
    this.onPacket(packet);
  }

  /** The PUBACKs whose turn has come (in order), in one write: each is 4 fixed bytes, written without mqtt-packet. */
  private flushAcks(): void {
    let n = 0;
    while (n < this.acks.length && this.acks[n]!.done) n++;
    if (n > 0) {
      const out = Buffer.allocUnsafe(4 * n);
      for (let i = 0; i < n; i++) {
        const id = this.acks[i]!.messageId;
        out[4 * i] = 0x40; // PUBACK
        out[4 * i + 1] = 0x02; // remaining length
        out[4 * i + 2] = id >> 8;
        out[4 * i + 3] = id & 0xff;
      }
      if (n === this.acks.length) this.acks.length = 0;
      else this.acks.splice(0, n);
      if (!this.stream.destroyed && !this.stream.writableEnded && this.state !== 'closed') this.stream.write(out);
    }
    if (this.paused && this.acks.length < MAX_PENDING_ACKS / 2) {
      this.paused = false;
      this.resumeReading();
    }
  }

  private async onSubscribe(packet: ISubscribePacket): Promise<void> {
    const granted: number[] = [];
    if (this.dpsConnection) {
      for (const { topic } of packet.subscriptions) granted.push(topic === DPS_RESPONSE_FILTER || topic.startsWith('$dps/registrations/res/') ? 1 : 0x80);
      return this.send({ cmd: 'suback', messageId: packet.messageId, granted });
    }
    for (const { topic, qos } of packet.subscriptions) {
      if (!topicBelongsTo(topic, this.deviceId, this.moduleId)) return this.close(`subscribing to '${topic}' is not allowed`);
      const handler = this.route(topic);
      if (!handler?.subscribe) {
        granted.push(0x80);
        continue;
      }
      try {
        // IoT Hub grants at most QoS 1.
        const grant = await handler.subscribe(this, topic, qos === 0 ? 0 : 1);
        if (grant !== 0 && grant !== 1 && grant !== 0x80) throw new Error(`the handler granted ${String(grant)}`);
        granted.push(grant);
        if (this.persistent && grant !== 0x80) this.context.persistentSessions!.subscribed(this.sessionKey(), topic, grant);
      } catch (e) {
        return this.close(`subscribe to '${topic}' refused: ${(e as Error).message}`);
      }
    }
    this.send({ cmd: 'suback', messageId: packet.messageId, granted });
  }

  private async onUnsubscribe(packet: IUnsubscribePacket): Promise<void> {
    if (this.dpsConnection) return this.send({ cmd: 'unsuback', messageId: packet.messageId, granted: [] });
    for (const topic of packet.unsubscriptions) {
      if (!topicBelongsTo(topic, this.deviceId, this.moduleId)) return this.close(`unsubscribing from '${topic}' is not allowed`);
      try {
        await this.route(topic)?.unsubscribe?.(this, topic);
        if (this.persistent) this.context.persistentSessions!.unsubscribed(this.sessionKey(), topic);
      } catch (e) {
        return this.close(`unsubscribe from '${topic}' refused: ${(e as Error).message}`);
      }
    }
    this.send({ cmd: 'unsuback', messageId: packet.messageId, granted: [] });
  }

  /** Kept subscriptions belong to one incarnation of the identity: a device deleted and created again starts afresh. */
  private sessionKey(): string {
    return `${identityKey(this)}#${this.generationId}`;
  }

  /** The handler of a topic this device may touch; undefined for another device's topics or unknown ones. */
  private route(topic: string): TopicHandler | undefined {
    // A device mostly publishes to one topic over and over: the last answer is kept.
    if (topic === this.lastRoute?.topic) return this.lastRoute.handler;
    if (!topicBelongsTo(topic, this.deviceId, this.moduleId)) return undefined;
    const handler = this.context.handlers.find((h) => h.owns(topic));
    this.lastRoute = { topic, handler };
    return handler;
  }

  private send(packet: Packet): void {
    if (this.stream.destroyed || this.stream.writableEnded || this.state === 'closed') return;
    this.stream.write(mqttPacket.generate(packet));
  }

  private allocatePacketId(): number {
    for (;;) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }

  /**
   * IoT Hub accepts a Will only on the device's own telemetry topic and, when the connection ends
   * without DISCONNECT, forwards it as telemetry with the application property `iothub-MessageType: Will`.
   */
  private acceptWill(topic: string, payload: Buffer | string): void {
    const handler = this.route(topic);
    if (!handler?.publish || !/^devices\/[^/]+\/(?:modules\/[^/]+\/)?messages\/events(?:\/|$)/.test(topic)) {
      this.log.debug({ deviceId: this.deviceId, topic }, 'Will on a non-telemetry topic ignored');
      return;
    }
    const bag = topic.endsWith('/') ? '' : topic.includes('/messages/events/') ? '&' : '/';
    this.will = { topic: `${topic}${bag}iothub-MessageType=Will`, payload: typeof payload === 'string' ? Buffer.from(payload) : payload };
  }

  private sendWill(): void {
    const will = this.will;
    const handler = will && this.route(will.topic);
    if (!will || !handler?.publish) return;
    Promise.resolve()
      .then(() => handler.publish!(this, { topic: will.topic, payload: will.payload, qos: 1 }))
      .catch((e: Error) => this.log.warn({ deviceId: this.deviceId, err: e.message }, 'Will message not delivered'));
  }

  /**
   * IoT Hub closes a SAS-authenticated connection when its token expires; the SDKs reconnect with
   * a fresh one. Set before the keep-alive timer is armed, which watches it (one timer a connection).
   */
  private closeAtExpiry(expiresAt: number | undefined): void {
    if (expiresAt !== undefined) this.expiresAt = expiresAt;
  }

  /**
   * IoT Hub closes a connection after 1.5 keep-alive periods without a packet, and when its token
   * expires. One timer for both, re-armed lazily.
   */
  private armKeepAlive(ms: number): void {
    clearTimeout(this.keepAliveTimer);
    const untilExpiry = this.expiresAt - Date.now();
    this.keepAliveTimer = setTimeout(() => {
      const now = Date.now();
      if (now >= this.expiresAt) return this.close('the SAS token expired');
      const idle = now - this.lastPacketAt;
      if (idle >= this.keepAliveMs) this.close('keep-alive expired');
      else this.armKeepAlive(this.keepAliveMs - idle);
    }, Math.max(0, Math.min(ms, untilExpiry)));
    this.keepAliveTimer.unref();
  }

  private armTimer(ms: number, reason: string, peersFault = false): void {
    clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = setTimeout(() => (peersFault ? this.fail(reason) : this.close(reason)), ms);
    this.keepAliveTimer.unref();
  }
}
