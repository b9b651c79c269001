/**
 * A raw TCP peer for tests: sends exact bytes and reads frames, lines or raw
 * bytes back, independent of edgepoll's own codec. Cleanup is registered with
 * the caller's `onTestFinished` the moment the socket is created.
 */
import net from 'node:net';
import { onTestFinished } from 'vitest';

export interface WireFrame {
  flags: number;
  type: number;
  seq: number;
  payload: Buffer;
}

export function frame(flags: number, type: number, seq: number, payload: Uint8Array | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const out = Buffer.alloc(12 + body.length);
  out[0] = 0xeb;
  out[1] = flags;
  out.writeUInt16BE(type, 2);
  out.writeUInt32BE(body.length, 4);
  out.writeUInt32BE(seq >>> 0, 8);
  body.copy(out, 12);
  return out;
}

export class WirePeer {
  readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  ended = false;
  closed = false;
  error: Error | undefined;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => {
      this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (error) => {
      this.error = error;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when `ready()` returns non-undefined, or rejects after `timeout` ms. */
  private until<T>(ready: () => T | undefined, timeout: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const value = ready();
        if (value !== undefined) {
          clearTimeout(timer);
          resolve(value);
        } else if (this.ended || this.closed) {
          clearTimeout(timer);
          reject(new Error(`connection ended while waiting for ${what} (${this.buffered.length} bytes buffered)`));
        } else {
          this.waiters.push(check);
        }
      };
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms waiting for ${what}`)), timeout);
      check();
    });
  }

  write(bytes: Uint8Array | string): void {
    this.socket.write(bytes);
  }

  /** The next frame (any type). */
  readFrame(timeout = 5000): Promise<WireFrame> {
    return this.until(() => this.takeFrame(), timeout, 'a frame');
  }

  /** The next `count` frames. */
  async readFrames(count: number, timeout = 10000): Promise<WireFrame[]> {
    const frames: WireFrame[] = [];
    const deadline = Date.now() + timeout;
    while (frames.length < count) frames.push(await this.readFrame(Math.max(1, deadline - Date.now())));
    return frames;
  }

  /** Exactly `length` bytes. */
  readBytes(length: number, timeout = 5000): Promise<Buffer> {
    return this.until(
      () => {
        if (this.buffered.length < length) return undefined;
        const out = this.buffered.subarray(0, length);
        this.buffered = this.buffered.subarray(length);
        return out;
      },
      timeout,
      `${length} bytes`,
    );
  }

  /** The next line without its '\n'. */
  readLine(timeout = 5000): Promise<string> {
    return this.until(
      () => {
        const at = this.buffered.indexOf(10);
        if (at < 0) return undefined;
        const line = this.buffered.subarray(0, at).toString('latin1');
        this.buffered = this.buffered.subarray(at + 1);
        return line;
      },
      timeout,
      'a line',
    );
  }

  /** Resolves when the server has closed its side (FIN or reset); returns bytes left unread. */
  waitClosed(timeout = 5000): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.ended || this.closed) {
          clearTimeout(timer);
          resolve(this.buffered);
        } else this.waiters.push(check);
      };
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms waiting for close`)), timeout);
      check();
    });
  }

  private takeFrame(): WireFrame | undefined {
    if (this.buffered.length < 12) return undefined;
    const length = this.buffered.readUInt32BE(4);
    if (this.buffered.length < 12 + length) return undefined;
    const f: WireFrame = {
      flags: this.buffered[1]!,
      type: this.buffered.readUInt16BE(2),
      seq: this.buffered.readUInt32BE(8),
      payload: Buffer.from(this.buffered.subarray(12, 12 + length)),
    };
    this.buffered = this.buffered.subarray(12 + length);
    return f;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Connects to 127.0.0.1:port with TCP_NODELAY; destroyed when the test ends. */
export async function connectPeer(port: number, host = '127.0.0.1'): Promise<WirePeer> {
  const socket = net.connect({ port, host, noDelay: true });
  const peer = new WirePeer(socket);
  try {
    onTestFinished(() => void socket.destroy());
  } catch {
    // outside a test (e.g. beforeAll): the caller cleans up.
  }
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return peer;
}

/** A raw socket that never reads (paused); `gone` turns true when the server closes it. Destroyed when the test ends. */
export function nonReader(port: number, host = '127.0.0.1'): Promise<net.Socket & { gone?: boolean }> {
  const socket: net.Socket & { gone?: boolean } = net.connect({ port, host, noDelay: true });
  onTestFinished(() => void socket.destroy());
  socket.pause();
  socket.on('error', () => undefined);
  socket.on('close', () => (socket.gone = true));
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A port with nothing listening (bound, then released). */
export async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
