/**
 * The client's dead-peer detector (docs/PROTOCOL.md section 3): after `interval` ms
 * without a received byte it asks for a PING; after `timeout` ms more of
 * silence it declares the connection dead. Owns one timer at a time (through
 * the injected {@link Clock}); does not own the socket (it calls back).
 * Runs on the JS thread.
 *
 * Why one lazily re-armed timer instead of resetting a timer per chunk:
 * `touch()` runs for every chunk received and only stores a timestamp; the
 * timer, when it fires, looks at how long the silence really is and re-arms
 * itself for the next deadline. A busy connection costs one timer per
 * `interval`, not one clearTimeout/setTimeout pair per chunk.
 */
import type { Clock } from './clock';

export interface HeartbeatActions {
  /** Send a PING now (the connection has been silent for `interval`). */
  ping(): void;
  /** The connection has been silent for `interval + timeout`: destroy it. Called once. */
  dead(): void;
}

export class ClientHeartbeat {
  private lastLife = 0;
  /** The `lastLife` a PING was already sent for (one PING per silence). */
  private pingedFor = -1;
  private timer: unknown;
  private running = false;

  constructor(
    private readonly clock: Clock,
    private readonly interval: number,
    private readonly timeout: number,
    private readonly actions: HeartbeatActions,
  ) {}

  /** Starts counting silence from now. */
  start(): void {
    this.running = true;
    this.lastLife = this.clock.now();
    this.arm(this.interval);
  }

  /** Any byte received is life. Cheap: called for every chunk. */
  touch(): void {
    this.lastLife = this.clock.now();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delay: number): void {
    this.timer = this.clock.setTimeout(() => this.check(), Math.max(1, delay));
  }

  private check(): void {
    this.timer = undefined;
    if (!this.running) return;
    const silence = this.clock.now() - this.lastLife;
    if (silence >= this.interval + this.timeout) {
      this.stop();
      this.actions.dead();
      return;
    }
    if (silence >= this.interval) {
      if (this.pingedFor !== this.lastLife) {
        this.pingedFor = this.lastLife;
        this.actions.ping();
      }
      this.arm(this.interval + this.timeout - silence);
      return;
    }
    this.arm(this.interval - silence);
  }
}
