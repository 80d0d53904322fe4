import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';
import { type ContainerStore, containerName } from './container-store.js';
import { errorMessage } from './errors.js';
import { type GlueEvent, parseEngineEvent } from './events.js';
import type { EngineIdentity } from './handler.js';
import type { Logger } from './logger.js';
import { backoffDelay, sleep, withTimeout } from './timing.js';

/**
 * An engine's identity: the `docker info` ID alone is shared by every engine started from one
 * `/etc/docker/key.json` (and by cloned VM images), so its data root and name go in too. Stable
 * across restarts of the same engine.
 */
export function engineIdentity(dockerId: string, rootDir: string, name: string): EngineIdentity {
  if (dockerId === '' && rootDir === '' && name === '') return { id: '', name: '', dockerId: '' };
  const id = createHash('sha256').update(`${dockerId}\0${rootDir}\0${name}`).digest('hex').slice(0, 16);
  return { id, name, dockerId };
}

export interface EngineWatcherOptions {
  docker: Dockerode;
  /** For log lines: the address as the operator wrote it. */
  address: string;
  store: ContainerStore;
  logger: Logger;
  /** Receives every container event in the order the engine sent it (replayed and synthesized ones too). */
  onEvent: (event: GlueEvent) => void;
  /** Called after every (re)connect, once the store holds the engine's full state. */
  onSynced: (first: boolean) => void;
  /** Called when the event stream is up (true) or lost / unreachable (false). */
  onConnection?: (connected: boolean) => void;
  signal: AbortSignal;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A stream silent for this long is checked: engine ping, then a look at events it should have carried. */
  watchdogMs?: number;
  /** How long one API call (ping, list, inspect) may take. */
  callTimeoutMs?: number;
}

interface Connection {
  stream: NodeJS.ReadableStream & { destroy?: () => void };
}

/**
 * Keeps Glue in step with one engine for as long as it runs: list + inspect for the initial state,
 * then the event stream. When the stream ends or the engine goes away, it reconnects with backoff,
 * replays what was missed with `since`, re-lists everything and synthesizes the events that neither
 * the replay nor the stream delivered (a container that died with the engine, one removed meanwhile).
 */
export class EngineWatcher {
  private readonly o: Required<EngineWatcherOptions>;
  /** Engine time of the last event received, as `seconds.nanoseconds`, for `since` on reconnect. */
  private since: string | undefined;
  private lastActivity = Date.now();
  private seenSinceConnect = new Set<string>();
  private recent = new Set<string>();
  private recentOrder: string[] = [];
  private engineInfo: EngineIdentity | undefined;

  constructor(options: EngineWatcherOptions) {
    this.o = {
      backoffInitialMs: 500,
      backoffMaxMs: 30_000,
      watchdogMs: 60_000,
      callTimeoutMs: DEFAULT_CALL_TIMEOUT_MS,
      onConnection: () => undefined,
      ...options,
    };
  }

  engine(): EngineIdentity | undefined {
    return this.engineInfo;
  }

  /** Connects once and fills the store; throws if the engine is unreachable (for run-once mode). */
  async snapshot(): Promise<void> {
    await this.connectInfo();
    await this.resync(true);
  }

  /** Watches until the signal aborts. Never throws: every failure becomes a log line and a retry. */
  async run(): Promise<void> {
    let attempt = 0;
    let first = true;
    while (!this.o.signal.aborted) {
      let conn: Connection | undefined;
      try {
        await this.connectInfo();
        const stream = (await this.o.docker.getEvents(eventsQuery(this.since))) as Connection['stream'];
        conn = { stream };
        this.seenSinceConnect = new Set();
        this.lastActivity = Date.now();
        const ended = this.read(conn);
        if (this.o.signal.aborted) break;
        this.o.logger.info(
          { engine: this.o.address, since: this.since, reconnect: !first },
          first ? 'connected to engine' : 'reconnected to engine; replaying missed events',
        );
        this.o.onConnection(true);
        await this.resync(first);
        this.o.onSynced(first);
        first = false;
        attempt = 0;
        const watchdog = this.startWatchdog(conn);
        try {
          await ended;
        } finally {
          clearInterval(watchdog);
        }
        if (!this.o.signal.aborted) {
          this.o.logger.warn({ engine: this.o.address }, 'engine event stream ended; reconnecting');
          this.o.onConnection(false);
        }
      } catch (err) {
        if (this.o.signal.aborted) break;
        this.o.onConnection(false);
        const delay = backoffDelay(attempt, this.o.backoffInitialMs, this.o.backoffMaxMs);
        this.o.logger.warn(
          { engine: this.o.address, retryInMs: delay, attempt: attempt + 1 },
          `engine unreachable at ${this.o.address}: ${errorMessage(err)}; retrying`,
        );
        attempt += 1;
        conn?.stream.destroy?.();
        await sleep(delay, this.o.signal);
        continue;
      }
      conn?.stream.destroy?.();
      await sleep(backoffDelay(0, this.o.backoffInitialMs, this.o.backoffMaxMs), this.o.signal);
    }
  }

  private async connectInfo(): Promise<void> {
    const info = (await withTimeout(
      this.o.docker.info(),
      this.o.callTimeoutMs,
      `no answer within ${this.o.callTimeoutMs} ms`,
    )) as {
      ID?: string;
      Name?: string;
      DockerRootDir?: string;
      SystemTime?: string;
    };
    this.engineInfo = engineIdentity(info.ID ?? '', info.DockerRootDir ?? '', info.Name ?? '');
    if (this.since === undefined && typeof info.SystemTime === 'string') {
      const t = Date.parse(info.SystemTime);
      if (!Number.isNaN(t)) this.since = (t / 1000).toFixed(3);
    }
  }

  private read(conn: Connection): Promise<void> {
    return new Promise((resolve) => {
      let buffer = '';
      const onAbort = (): void => conn.stream.destroy?.();
      // An 'abort' listener added to a signal that has already aborted never fires: a stop() that came
      // while connecting would leave this stream (and stop()) waiting forever.
      if (this.o.signal.aborted) {
        onAbort();
        resolve();
        return;
      }
      this.o.signal.addEventListener('abort', onAbort, { once: true });
      const finish = (): void => {
        this.o.signal.removeEventListener('abort', onAbort);
        resolve();
      };
      conn.stream.on('data', (chunk: Buffer | string) => {
        this.lastActivity = Date.now();
        buffer += chunk.toString();
        let nl: number;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line !== '') this.accept(line);
        }
      });
      conn.stream.on('end', finish);
      conn.stream.on('close', finish);
      conn.stream.on('error', (err: Error) => {
        if (!this.o.signal.aborted)
          this.o.logger.warn({ engine: this.o.address, err: errorMessage(err) }, 'engine event stream error');
        finish();
      });
    });
  }

  private accept(line: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      this.o.logger.warn({ line: line.slice(0, 200) }, 'ignoring an engine event that is not JSON');
      return;
    }
    const event = parseEngineEvent(raw);
    if (!event) return;
    const key = `${event.timeNano}/${event.id}/${event.action}`;
    if (this.recent.has(key)) return; // the replay after a reconnect can repeat the last event
    this.recent.add(key);
    this.recentOrder.push(key);
    if (this.recentOrder.length > 1024) this.recent.delete(this.recentOrder.shift() ?? '');
    if (event.timeNano > 0n) {
      const next = event.timeNano + 1n;
      this.since = `${next / 1_000_000_000n}.${(next % 1_000_000_000n).toString().padStart(9, '0')}`;
    }
    this.seenSinceConnect.add(event.id);
    this.o.onEvent(event);
  }

  /** Lists and inspects every container; after a reconnect, synthesizes the events the stream missed. */
  private async resync(first: boolean): Promise<void> {
    const now = await inspectAll(this.o.docker, this.o.callTimeoutMs);
    const before = new Map(this.o.store.all().map((c) => [c.Id, c]));
    for (const info of now.values()) this.o.store.set(info);
    if (first) return;
    const synth = (id: string, action: string, info: ContainerInspectInfo | undefined): void => {
      if (this.seenSinceConnect.has(id)) return;
      this.o.logger.info(
        { container: id.slice(0, 12), containerName: containerName(info), event: action },
        'resync: delivering an event the engine stream missed',
      );
      this.o.onEvent({
        action,
        id,
        attributes: { ...(info?.Config?.Labels ?? {}), name: containerName(info) },
        timeNano: 0n,
      });
    };
    for (const [id, info] of now) {
      const was = before.get(id)?.State?.Running === true;
      const is = info.State?.Running === true;
      if (is && !was) synth(id, 'start', info);
      if (!is && was) synth(id, 'die', info);
    }
    for (const [id, info] of before) {
      if (now.has(id)) continue;
      if (info.State?.Running === true) synth(id, 'die', info);
      synth(id, 'destroy', info);
    }
  }

  private startWatchdog(conn: Connection): NodeJS.Timeout {
    const period = Math.max(1000, Math.floor(this.o.watchdogMs / 2));
    const timer = setInterval(() => {
      if (Date.now() - this.lastActivity < this.o.watchdogMs) return;
      void this.checkQuietStream(conn);
    }, period);
    timer.unref();
    return timer;
  }

  /** A quiet stream is fine if the engine is up and has no newer events; otherwise it is re-opened. */
  private async checkQuietStream(conn: Connection): Promise<void> {
    const checkedAt = Date.now();
    try {
      await withTimeout(this.o.docker.ping(), this.o.callTimeoutMs, 'ping timed out');
      const since = this.since ?? String(Math.floor(this.lastActivity / 1000));
      const missed = await withTimeout(
        this.o.docker.getEvents(eventsQuery(since, String(Math.floor(checkedAt / 1000)))),
        this.o.callTimeoutMs,
        'event check timed out',
      );
      let text = '';
      for await (const chunk of missed) text += chunk.toString();
      const unseen = text
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '')
        .some((l) => {
          const e = parseEngineEvent(safeJson(l));
          return e !== undefined && !this.recent.has(`${e.timeNano}/${e.id}/${e.action}`);
        });
      if (unseen) {
        this.o.logger.warn(
          { engine: this.o.address },
          'engine event stream stalled (the engine has events it did not deliver); re-opening',
        );
        conn.stream.destroy?.();
      } else {
        this.lastActivity = checkedAt;
      }
    } catch (err) {
      this.o.logger.warn(
        { engine: this.o.address, err: errorMessage(err) },
        'engine watchdog: engine not answering; re-opening the event stream',
      );
      conn.stream.destroy?.();
    }
  }
}

/** Container events, from `since` (engine time, `seconds.nanoseconds`) up to `until` when given. */
function eventsQuery(since: string | undefined, until?: string): Dockerode.GetEventsOptions {
  // The engine takes fractional seconds as text; dockerode's types say number.
  const query: Record<string, unknown> = { filters: { type: ['container'] } };
  if (since !== undefined) query.since = since;
  if (until !== undefined) query.until = until;
  return query;
}

function safeJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

/** How long one engine API call (ping, list, inspect) may take unless `engine.callTimeoutMs` says. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/**
 * Every container the engine has, inspected, by id; each call bounded by `callTimeoutMs`. A container
 * removed between the list and its inspect is left out (its destroy event follows); any other failure
 * throws.
 */
export async function inspectAll(docker: Dockerode, callTimeoutMs: number): Promise<Map<string, ContainerInspectInfo>> {
  const listed = await withTimeout(
    docker.listContainers({ all: true }),
    callTimeoutMs,
    `listing containers took over ${callTimeoutMs} ms`,
  );
  const now = new Map<string, ContainerInspectInfo>();
  await Promise.all(
    listed.map(async (c) => {
      try {
        now.set(c.Id, await withTimeout(docker.getContainer(c.Id).inspect(), callTimeoutMs, 'inspect timed out'));
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      }
    }),
  );
  return now;
}
