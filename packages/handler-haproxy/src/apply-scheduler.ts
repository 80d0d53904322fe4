/**
 * When applies run: never two at once; an isolated request applies at once (leading edge), requests
 * that arrive while one runs or just ran coalesce into one more (debounce, bounded by a maximum
 * delay); a hold (min-reload-interval for a structural change) delays the next one; a failed apply is
 * retried by itself with backoff. What an apply does is the caller's (`apply`).
 */
import { errorMessage, type Logger } from '@glue/core';

export interface SchedulerOptions {
  /** Quiet time that ends a burst. */
  debounceMs: number;
  /** Longest a request waits for its apply to start, however long the burst. */
  maxDelayMs: number;
  logger: Logger;
  /** Runs one apply. */
  apply: () => Promise<void>;
  /** How long the next apply must still wait (0: now). */
  holdMs: () => number;
  /** Runs at once when an apply is held back (work that cannot wait for the hold). */
  whileHeld: () => Promise<void>;
}

interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
  firstAt: number;
  /** A caller will see this batch's failure (else the scheduler logs it itself). */
  reported: boolean;
  /** Started on the leading edge: requests joining it do not push it back. */
  immediate: boolean;
}

function batch(immediate: boolean): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Callers may not wait (fire-and-forget requests): never an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject, firstAt: Date.now(), reported: false, immediate };
}

export class ApplyScheduler {
  private pending: Batch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private due = false;
  private running: Promise<void> | undefined;
  private stopped = false;
  private lastEnd = Number.NEGATIVE_INFINITY;
  private retryDelay = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** How long the batch being applied waited (debounce, holds): for the log. */
  batchAge = 0;

  constructor(private readonly o: SchedulerOptions) {}

  /** Asks for an apply; resolves when an apply that saw this request finished (the batch's first request rejects if it failed). */
  request(external = true): Promise<void> {
    if (this.stopped) return Promise.resolve();
    // Idle (nothing running or waiting, none ran within the debounce window): apply now.
    const idle = !this.running && !this.pending && Date.now() - this.lastEnd >= this.o.debounceMs;
    const b = (this.pending ??= batch(idle));
    const first = external && !b.reported;
    if (first) b.reported = true;
    if (!b.immediate || idle) {
      clearTimeout(this.timer);
      const wait = b.immediate
        ? 0
        : Math.max(0, Math.min(this.o.debounceMs, b.firstAt + this.o.maxDelayMs - Date.now()));
      this.due = false;
      // A timer even for 0 ms: requests made in the same turn (a burst of events) join the batch.
      this.timer = setTimeout(() => {
        this.due = true;
        this.kick();
      }, wait);
    }
    // A failed apply is reported once, to the first caller of the batch, not once per coalesced event.
    return first ? b.promise : b.promise.catch(() => undefined);
  }

  /** Resolves once no apply is running or waiting. */
  async settled(): Promise<void> {
    while (this.running || this.pending) {
      await (this.running ?? this.pending?.promise)?.catch(() => undefined);
      await new Promise((r) => setImmediate(r));
    }
  }

  /** No apply starts after this; the one running finishes; waiting callers are released. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    await this.running?.catch(() => undefined);
    this.pending?.resolve();
    this.pending = undefined;
  }

  private kick(): void {
    if (this.running || !this.due || !this.pending || this.stopped) return;
    const hold = this.o.holdMs();
    if (hold > 0) {
      // Let the burst pile up until the hold ends (one apply for all); what cannot wait runs now.
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void (this.running ?? Promise.resolve()).then(() => this.kick()), hold);
      this.running = this.o.whileHeld().finally(() => {
        this.running = undefined;
      });
      return;
    }
    const b = this.pending;
    this.pending = undefined;
    this.due = false;
    this.batchAge = Date.now() - b.firstAt;
    this.running = this.o
      .apply()
      .then(
        () => {
          this.retryDelay = 0;
          b.resolve();
        },
        (err: unknown) => {
          if (!b.reported) this.o.logger.error({ err: errorMessage(err) }, `apply failed: ${errorMessage(err)}`);
          b.reject(err);
          this.scheduleRetry();
        },
      )
      .finally(() => {
        this.running = undefined;
        this.lastEnd = Date.now();
        this.kick();
      });
  }

  /** After a failed apply, try again by itself (backoff 1 s .. 30 s) so a transient failure heals without a new event. */
  private scheduleRetry(): void {
    if (this.stopped) return;
    this.retryDelay = Math.min(30_000, this.retryDelay === 0 ? 1000 : this.retryDelay * 2);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.request(false), this.retryDelay);
    this.retryTimer.unref();
  }
}
