/**
 * Runs tasks one after another per key (a container id) and different keys side by side.
 * A task that throws does not stop the tasks queued behind it; its error goes to `onError`
 * (Glue logs it), never nowhere.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();
  private pending = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly onError: (err: unknown, key: string) => void = () => undefined) {}

  get size(): number {
    return this.pending;
  }

  push(key: string, task: () => Promise<void>): Promise<void> {
    this.pending += 1;
    const previous = this.tails.get(key) ?? Promise.resolve();
    const run = previous
      .then(task)
      .catch((err: unknown) => this.onError(err, key))
      .finally(() => {
        this.pending -= 1;
        if (this.tails.get(key) === run) this.tails.delete(key);
        if (this.pending === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    this.tails.set(key, run);
    return run;
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
