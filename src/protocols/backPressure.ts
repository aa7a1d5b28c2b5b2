import type { Duplex } from 'node:stream';

/** How much unsent output one connection may hold (config `connections.writeBuffer*`). */
export interface WriteBufferLimits {
  /** Above this many unsent bytes the connection is not read from until its output drains. */
  highBytes: number;
  /** Beyond this many the peer is not reading at all: the connection is closed. */
  maxBytes: number;
}

/**
 * Bounds what a peer that does not read costs: a device that floods QoS 1 publishes and never
 * reads its PUBACKs, or that never reads the messages, twin answers and method calls sent to it.
 * While the stream's unsent output is above `highBytes` it is paused (TCP then pushes back on the
 * peer), and resumed once it drains; output beyond `maxBytes` (what the hub sends on its own
 * initiative keeps coming while reading is paused) destroys the stream with an error.
 *
 * The protocol code keeps its own pause()/resume() (MQTT pauses while publishes await their
 * commit): the stream reads only when neither holds it. The check costs nothing while `write`
 * returns true, i.e. while less than the stream's own high-water mark (16 KiB) is buffered.
 */
export function limitWriteBuffer(stream: Duplex, limits: WriteBufferLimits): void {
  const pause = stream.pause.bind(stream);
  const resume = stream.resume.bind(stream);
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  let pausedByOwner = false;
  let held = false;
  const release = () => {
    held = false;
    if (!pausedByOwner && !stream.destroyed) resume();
  };
  stream.pause = () => {
    pausedByOwner = true;
    return pause();
  };
  stream.resume = () => {
    pausedByOwner = false;
    return held ? stream : resume();
  };
  stream.write = ((...args: unknown[]) => {
    const ok = write(...args);
    if (ok || stream.destroyed) return ok;
    const unsent = stream.writableLength;
    if (unsent > limits.maxBytes) {
      stream.destroy(new Error(`the peer does not read: ${unsent} bytes unsent (limit ${limits.maxBytes})`));
    } else if (unsent > limits.highBytes && !held) {
      held = true;
      pause();
      stream.once('drain', release);
    }
    return ok;
  }) as Duplex['write'];
}
