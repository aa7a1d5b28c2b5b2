/**
 * A share per turn for AMQP connections, as MQTT connections have (config
 * `connections.packetsPerConnectionTurn`).
 *
 * rhea decodes and dispatches every frame of a socket read at once. A device holding 1,000 credits
 * sends 1,000 transfers in one burst (its first window, or a backlog after a reconnect): one read of
 * hundreds of them was handled in one stretch of the event loop (~100 ms in bench:hostile's
 * amqpflood), holding every other device's PUBACK behind it. Here rhea is handed at most `perTurn`
 * whole frames of a connection per turn; the rest waits, the socket paused, for the coming turns.
 * Nothing is refused or reordered.
 */
import type { Socket } from 'node:net';

/** The 8-byte protocol headers ("AMQP" + id and version) read as a frame size: no frame is that long. */
const PROTOCOL_HEADER_SIZE = 0x414d5150;

/**
 * Follows a connection's byte stream through its frames (4-byte size first) and protocol headers,
 * across reads, to cut a read after so many whole frames.
 */
export class FrameCounter {
  /** Bytes of the current frame (or protocol header) still to come; 0 at a boundary. */
  private left = 0;
  /** The size field being read at a boundary, and how many of its bytes are in. */
  private size = 0;
  private sizeBytes = 0;
  /** Once the stream makes no sense as frames: counting stops, rhea refuses it. */
  private lost = false;

  /**
   * Where `buff` ends after `max` more frames have ended (`end`, at a frame boundary), or its
   * length if fewer do; `frames`: how many ended before `end`.
   */
  cut(buff: Uint8Array, max: number): { end: number; frames: number } {
    if (this.lost) return { end: buff.length, frames: 0 };
    let i = 0;
    let frames = 0;
    while (i < buff.length) {
      if (this.left > 0) {
        const n = Math.min(this.left, buff.length - i);
        i += n;
        this.left -= n;
        if (this.left === 0 && ++frames >= max) return { end: i, frames };
        continue;
      }
      this.size = ((this.size << 8) | buff[i++]!) >>> 0;
      if (++this.sizeBytes < 4) continue;
      const size = this.size;
      this.size = 0;
      this.sizeBytes = 0;
      if (size === PROTOCOL_HEADER_SIZE) this.left = 4;
      else if (size >= 8) this.left = size - 4;
      else {
        this.lost = true;
        return { end: buff.length, frames };
      }
    }
    return { end: i, frames };
  }
}

/** rhea's connection as this needs it: its input, which its socket's 'data' listener calls. */
interface Input {
  input(buff: Buffer): void;
}

/**
 * The event loop's turns, counted by one `setImmediate` a turn in which some connection read, not
 * one per connection: a connection's share starts over when the count has moved.
 */
let turn = 0;
let counting = false;
function currentTurn(): number {
  if (!counting) {
    counting = true;
    setImmediate(() => {
      counting = false;
      turn++;
    });
  }
  return turn;
}

/**
 * Hands `connection` (before rhea's `accept(socket)`, which binds its input to the socket's
 * 'data') at most `perTurn` whole frames of `socket` per event-loop turn.
 */
export function paceInput(connection: Input, socket: Socket, perTurn: number): void {
  const input = connection.input;
  const counter = new FrameCounter();
  /** Read and not yet handed to rhea, in order; a turn of its own is due while there is any. */
  let held: Buffer[] = [];
  /** Frames handed to rhea in the turn numbered `handedIn`. */
  let handed = 0;
  let handedIn = -1;
  const nextTurn = () => {
    const rest = held.length === 1 ? held[0]! : Buffer.concat(held);
    held = [];
    if (socket.destroyed) return;
    // A share of its own in this check phase (the count may move after it: at most two shares a turn).
    handed = 0;
    handedIn = currentTurn();
    hand(rest);
    if (held.length === 0) socket.resume();
  };
  const hold = (buff: Buffer) => {
    held.push(buff);
    socket.pause();
    setImmediate(nextTurn);
  };
  const hand = (buff: Buffer) => {
    const now = currentTurn();
    if (now !== handedIn) {
      handedIn = now;
      handed = 0;
    }
    // The share ended with the last read's last frame: this read waits whole.
    if (handed >= perTurn) return hold(buff);
    const { end, frames } = counter.cut(buff, perTurn - handed);
    handed += frames;
    input.call(connection, end === buff.length ? buff : buff.subarray(0, end));
    if (end < buff.length) hold(buff.subarray(end));
  };
  connection.input = function (buff: Buffer) {
    // Behind what waits already (a paused socket may still deliver what it had read).
    if (held.length > 0) held.push(buff);
    else hand(buff);
  };
}
