/** The fuzzer's side of the wire: one short connection per input, and a count of the hub's open sockets. */
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** Every socket the fuzzer opened and has not yet seen closed (none may remain at the end). */
export const openClientSockets = new Set<Socket>();

export interface Exchange {
  /** What the hub sent back. */
  response: Buffer;
  /** The hub closed the connection (rather than the fuzzer giving up waiting). */
  closedByHub: boolean;
  /** The connection could not be made at all (the hub refused it: itself a finding if it keeps happening). */
  connectError?: string;
}

export interface ExchangeOptions {
  host: string;
  port: number;
  tls: boolean;
  /** Give up once the hub has been silent this long after the last write. */
  idleMs?: number;
  /** Give up after this long in all. */
  maxMs?: number;
  /**
   * Write only this many chunks, then the rest once the hub has answered (or 200 ms later): AMQP's
   * SASL exchange must finish before the AMQP header is read, so pipelined frames would be lost.
   * A list: several such stages (e.g. the SASL outcome, then the link credit an attach gets).
   */
  pauseAfter?: number | number[];
}

/** Opens a connection, writes `chunks` one by one, reads until the hub closes or goes quiet, then destroys the socket. */
export function exchange(chunks: Buffer[], options: ExchangeOptions): Promise<Exchange> {
  const { host, port, idleMs = 80, maxMs = 1500 } = options;
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    let done = false;
    let idleTimer: NodeJS.Timeout | undefined;
    const socket: Socket = options.tls
      ? tlsConnect({ host, port, rejectUnauthorized: false }, () => start())
      : netConnect({ host, port }, () => start());
    openClientSockets.add(socket);
    const maxTimer = setTimeout(() => finish(false), maxMs);
    const finish = (closedByHub: boolean, connectError?: string) => {
      if (done) return;
      done = true;
      clearTimeout(maxTimer);
      clearTimeout(idleTimer);
      socket.destroy();
      resolve({ response: Buffer.concat(received), closedByHub, connectError });
    };
    const idle = () => {
      clearTimeout(idleTimer);
      // Not while stages are still to be written: the next one goes out on its own timer.
      idleTimer = setTimeout(() => allWritten && finish(false), idleMs);
    };
    let connected = false;
    let allWritten = false;
    const start = () => {
      connected = true;
      // Stage boundaries: write up to each, then wait for the hub's answer (or 200 ms) before the next.
      const stops = [...(typeof options.pauseAfter === 'number' ? [options.pauseAfter] : (options.pauseAfter ?? [])), chunks.length]
        .filter((n) => n > 0 && n <= chunks.length)
        .sort((a, b) => a - b);
      let written = 0;
      const writeStage = (stage: number) => {
        const stop = stops[stage] ?? chunks.length;
        for (const c of chunks.slice(written, stop)) if (!socket.destroyed) socket.write(c);
        written = Math.max(written, stop);
        if (written >= chunks.length || done) {
          allWritten = true;
          idle();
          return;
        }
        let sent = false;
        const next = () => {
          if (sent || done) return;
          sent = true;
          clearTimeout(nextTimer);
          socket.off('data', onData);
          writeStage(stage + 1);
        };
        const nextTimer = setTimeout(next, 200);
        const onData = () => setTimeout(next, 10);
        socket.once('data', onData);
      };
      writeStage(0);
    };
    socket.on('data', (b: Buffer) => {
      if (received.reduce((n, r) => n + r.length, 0) < 1 << 20) received.push(b);
      idle();
    });
    socket.on('error', (e) => {
      if (!connected) finish(false, e.message);
    });
    socket.on('close', () => {
      openClientSockets.delete(socket);
      finish(true);
    });
  });
}

const OPEN_STATES = new Set(['01', '08', '0B']); // ESTABLISHED, CLOSE_WAIT, CLOSING: still held by the process

function hexAddress(host: string, port: number): string {
  const ip = host
    .split('.')
    .map((n) => Number(n).toString(16).padStart(2, '0').toUpperCase())
    .reverse()
    .join('');
  return `${ip}:${port.toString(16).padStart(4, '0').toUpperCase()}`;
}

/**
 * Connections the hub holds on `host` at `ports` (server side), from /proc/net/tcp: a socket the
 * hub never closes stays ESTABLISHED or CLOSE_WAIT here after the fuzzer has gone.
 */
export function hubSocketCount(host: string, ports: readonly number[]): number {
  const locals = new Set(ports.map((p) => hexAddress(host, p)));
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 3 && locals.has(f[1]!) && OPEN_STATES.has(f[3]!)) n++;
  }
  return n;
}
