/**
 * A handler's own work, one piece at a time: its runs and a periodic job (a reconcile, a read-back)
 * never overlap, whichever came first. Glue serializes a `serial` handler's runs, but a timer of the
 * handler's own runs outside Glue's queue: both go through here.
 */
export class Serial {
  private tail: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  /** Runs `fn` after whatever runs or waits before it has ended (failed or not). */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  /**
   * Runs `job` every `ms` through `run` (the timer does not keep the process alive). Nothing when `ms`
   * is 0 or a timer already runs (a second start() starts no second timer).
   */
  every(ms: number, job: () => Promise<void>): void {
    if (ms <= 0 || this.timer !== undefined) return;
    this.timer = setInterval(() => void this.run(job), ms);
    this.timer.unref();
  }

  /** Clears the timer and waits for the piece in progress (and those queued behind it). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.tail;
  }
}
