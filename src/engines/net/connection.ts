/**
 * One connection of the net engine: its socket, decoder, write-side flags and
 * the timestamps its deadlines are computed from (docs/PROTOCOL.md section 3).
 * Owns: that state and the deadline decision. Does not own: the socket's
 * events or writes (net.ts acts on what {@link NetConnection.due} says).
 * Runs on: the JS thread.
 */
import type net from 'node:net';
import type { Decoder } from '../../protocol/codec';
import type { EngineCode } from '../../errors';

/** Connection states: served; closing (nothing more delivered); gone. */
export const OPEN = 0;
export const CLOSING = 1;
export const CLOSED = 2;

/** One accepted socket and the state its deadlines need. */
export class NetConnection {
  state = OPEN;
  /** Set once: why the connection closes ('' until decided; 'OK' if never). */
  code = '';
  reason = '';
  /** Last byte received: heartbeat and idle timeout (any byte counts as life, as in the native engine). */
  lastRead: number;
  /** When the engine sent its last heartbeat PING. */
  pingAt = 0;
  /** When the message in progress began (0: none). */
  messageStart = 0;
  /** Force-destroy deadline once closing. */
  closeAt = 0;
  /** In the engine's flush list for this tick. */
  queued = false;
  /** socket.cork() in effect: a write that bypassed the coalescing buffer happened this tick. */
  corked = false;
  /**
   * Small frames queued since the last flush, copied back to back so one
   * socket.write carries them all (a write per message is most of what a
   * reply costs in node:net). Handed to the socket at the flush and dropped,
   * so an idle connection holds none.
   */
  out: Buffer | undefined = undefined;
  outLength = 0;
  /** Bytes of the last flush: the next coalescing buffer starts that big (no growing and copying). */
  outHint = 0;
  /** A write reported backpressure to the server: 'drain' is owed. */
  wantDrain = false;
  /** Reading paused because the outbound queue is above the high-water mark. */
  paused = false;
  /** Counted by an Admission (cluster maxConnections): released once, at close. */
  admitted = false;
  /** What the sink's open() returned: handed to messageOf/dataOf so the server need not look the connection up by id. */
  handle: unknown = undefined;

  constructor(
    readonly id: number,
    readonly socket: net.Socket,
    readonly decoder: Decoder | undefined,
    now: number,
  ) {
    this.lastRead = now;
  }

  /**
   * What the deadlines ask for at `now`: a timeout code to close with,
   * 'PING' (silent for the heartbeat interval, no PING sent since), or ''.
   */
  due(now: number, deadlines: Deadlines): EngineCode | 'PING' | '' {
    const d = deadlines;
    if (d.frameTimeout > 0 && this.messageStart > 0 && now - this.messageStart >= d.frameTimeout) return 'EFRAME_TIMEOUT';
    if (d.heartbeatInterval > 0) {
      const silence = now - this.lastRead;
      // As in the native engine: the timeout runs only once a PING is outstanding.
      const outstanding = this.pingAt > this.lastRead;
      if (outstanding && silence >= d.heartbeatInterval + d.heartbeatTimeout) return 'EHEARTBEAT_TIMEOUT';
      if (!outstanding && silence >= d.heartbeatInterval) {
        // An idle deadline due now still wins below; otherwise PING first.
        if (!(d.idleTimeout > 0 && silence >= d.idleTimeout)) return 'PING';
      }
    }
    if (d.idleTimeout > 0 && now - this.lastRead >= d.idleTimeout) return 'EIDLE_TIMEOUT';
    return '';
  }
}

/**
 * The deadlines of an engine's connections (ms, 0 = off).
 * `heartbeatInterval` is 0 outside the frame framing.
 */
export interface Deadlines {
  frameTimeout: number;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  /** Silence (no byte received) after which the connection is closed. */
  idleTimeout: number;
}

/**
 * Who decides maxConnections when it spans processes (the cluster engine's
 * primary). `admit` answers once per accepted socket; every admitted
 * connection is released once, when it closes.
 */
export interface Admission {
  admit(answer: (admitted: boolean) => void): void;
  release(): void;
}

/** The counters of one net engine. */
export interface NetCounters {
  connections: number;
  accepted: number;
  rejected: number;
  protocolErrors: number;
  /** Always 0: no batch ring between sockets and JS here (the native engine's count). */
  ringFull: number;
  /** Times a connection's outbound queue crossed above the high-water mark (a write returned false, reading paused). */
  backpressure: number;
}
