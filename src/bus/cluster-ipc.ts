/**
 * The bus between the cluster engine's workers when no external one is
 * given (PROTOCOL.md section 6: "with workers, the server is one space"):
 * node:cluster's IPC channel, the primary relaying every message to every
 * other worker; each worker keeps only the channels it subscribed to. No
 * interest routing: the IPC hop is cheap next to a broker's, and there are a
 * handful of workers.
 * Owns: the IPC listener of its side. Runs on: the JS thread of the primary
 * or of a worker.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Bus, BusEvents, BusTransport } from './bus';

interface BusMessage {
  edgepoll: 'bus';
  channel: string;
  payload: Uint8Array;
}

function isBusMessage(message: unknown): message is BusMessage {
  return typeof message === 'object' && message !== null && (message as { edgepoll?: unknown }).edgepoll === 'bus';
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

class IpcTransport implements BusTransport {
  readonly #channels = new Set<string>();
  #closed = false;

  constructor(private readonly events: BusEvents) {
    if (cluster.isPrimary) cluster.on('message', this.#fromWorker);
    else process.on('message', this.#fromPrimary);
    queueMicrotask(() => {
      if (!this.#closed && this.up) events.up();
    });
  }

  get up(): boolean {
    return !this.#closed && (cluster.isPrimary || process.connected === true);
  }

  async subscribe(channel: string): Promise<void> {
    this.#channels.add(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.#channels.delete(channel);
  }

  publish(channel: string, payload: Buffer): boolean {
    if (!this.up) return false;
    const message: BusMessage = { edgepoll: 'bus', channel, payload };
    if (cluster.isPrimary) {
      this.#relay(undefined, message);
      return true;
    }
    process.send?.(message, undefined, undefined, () => undefined);
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (cluster.isPrimary) cluster.off('message', this.#fromWorker);
    else process.off('message', this.#fromPrimary);
  }

  #relay(from: Worker | undefined, message: BusMessage): void {
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker && worker !== from && worker.isConnected()) worker.send(message, undefined, () => undefined);
    }
  }

  readonly #fromWorker = (worker: Worker, message: unknown): void => {
    if (!isBusMessage(message)) return;
    this.#relay(worker, message);
    this.#deliver(message);
  };

  readonly #fromPrimary = (message: unknown): void => {
    if (isBusMessage(message)) this.#deliver(message);
  };

  #deliver(message: BusMessage): void {
    if (!this.#closed && this.#channels.has(message.channel)) this.events.message(message.channel, asBuffer(message.payload));
  }
}

/** The workers' bus (used by the server itself on the cluster engine when no `bus` is given). */
export function clusterIpcBus(): Bus {
  return { kind: 'cluster', open: (events) => new IpcTransport(events) };
}
