import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type Dockerode from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';
import {
  type HandlerConfig,
  matchesEvent,
  readHandlerConfigs,
  resolveConfigDirs,
  DEFAULT_HANDLER_TIMEOUT_MS,
} from './config-loader.js';
import { ContainerStore, containerName } from './container-store.js';
import { createDocker, dockerEndpoint } from './docker-connect.js';
import { DEFAULT_CALL_TIMEOUT_MS, EngineWatcher, inspectAll } from './engine-watcher.js';
import { claimProblems } from './claims.js';
import { ConfigError, type ConfigProblem, errorMessage, GlueError } from './errors.js';
import { type GlueEvent, NONE, noneEvent, STATE_CHANGING_ACTIONS } from './events.js';
import type { Agent, Handler, HandlerContext, RunMode } from './handler.js';
import { loadHandlers } from './handler-loader.js';
import { type ContainerFilter, matchesFilter } from './filters.js';
import { observeGlue } from './glue-metrics.js';
import { createMetrics, type Metrics } from './metrics.js';
import { type CheckReport, containerProblems } from './check.js';
import { planReload } from './reload-plan.js';
import { type Logger, silentLogger } from './logger.js';
import { KeyedQueue } from './keyed-queue.js';
import { TimeoutError, withTimeout } from './timing.js';

/** A handler made in code by an embedding service, next to (or instead of) INI files. */
export interface InlineHandler {
  name: string;
  events: readonly string[];
  triggersNone?: boolean;
  timeoutMs?: number;
  handler: Handler | ((agent: Agent) => Handler);
}

export interface GlueOptions {
  /** INI dirs; default: the first of ./docker-glue.d, /etc/docker-glue.d, /etc/glue.d. Ignored if `configs` is given. */
  configDirs?: readonly string[];
  /** Already loaded INI configs (skips reading dirs). */
  configs?: readonly HandlerConfig[];
  /** Handlers made in code. When given without configDirs/configs, no INI file is read. */
  handlers?: readonly InlineHandler[];
  /** Docker address (`unix:///...`, `tcp://...`); default DOCKER_HOST or the standard socket. */
  dockerUrl?: string;
  /** A ready dockerode client (then `dockerUrl` only names it in logs). */
  docker?: Dockerode;
  logger?: Logger;
  /** Extra places (file URLs) to resolve handler packages from, after the INI's own directory. */
  resolveFrom?: readonly string[];
  /** How long `none` waits to coalesce a burst of triggers. Default 200 ms. */
  noneDebounceMs?: number;
  /**
   * How long stop() lets handlers in flight (and events already queued) finish before it aborts their
   * `ctx.signal` and the agent's signal. Default 10 s.
   */
  shutdownTimeoutMs?: number;
  engine?: { backoffInitialMs?: number; backoffMaxMs?: number; watchdogMs?: number; callTimeoutMs?: number };
  /** Working dir for relative config dirs. */
  cwd?: string;
  /** Where Glue's and the handlers' metrics go; default: a registry of this Glue's own. */
  metrics?: Metrics;
}

/** One handler run, as reported on the `handler` event and in the log. */
export interface HandlerRun {
  handler: string;
  file: string | undefined;
  event: string;
  containerId: string;
  containerName: string;
  durationMs: number;
  ok: boolean;
  timedOut: boolean;
  error?: unknown;
  /** The engine's time of the event (ns since the epoch); 0 for `none`. */
  eventTimeNano: bigint;
}

export interface RunOnceResult {
  runs: HandlerRun[];
  failed: number;
}

export interface GlueEvents {
  event: [GlueEvent];
  handler: [HandlerRun];
  synced: [{ first: boolean }];
  /** The engine's event stream is up (after every connect) or lost. */
  engine: [{ connected: boolean }];
  reload: [{ ok: boolean }];
}

/** One readiness check: `problem` says what is wrong; none means it passes. */
export interface ReadyCheck {
  name: string;
  problem?: string;
}

interface HandlerEntry {
  name: string;
  file: string | undefined;
  /** The INI file's text when it was loaded (reload() compares it). */
  text: string | undefined;
  events: ReadonlySet<string>;
  triggersNone: boolean;
  timeoutMs: number;
  instance: Handler;
  /** `serial` handlers: settles when the run before the newest one has ended. */
  tail?: Promise<void>;
  /** `[handler] only-*`: the containers it sees; `seen`, the ids of those it saw (see inView). */
  filter?: ContainerFilter;
  seen?: Set<string>;
}

/** After the shutdown bound ran out and runs were cancelled, how long stop() waits for them to end. */
const ABORT_GRACE_MS = 2_000;
/** The same after hurry(): a moment for a cancelled script to end, no more. */
const HURRY_GRACE_MS = 300;

/**
 * Where a Glue is in its life. `new` -> `loaded` (load(), or implicitly) -> `watching` (start()) or
 * `once` (runOnce()) -> `stopping` -> `stopped`. A Glue runs once or watches, once: any other call
 * (runOnce() twice, runOnce() after start(), start() after stop()) throws INVALID_STATE. stop() is
 * allowed in every state and idempotent.
 */
/** What reload() changed, by handler name (the INI file's base name). */
export interface ReloadResult {
  started: string[];
  stopped: string[];
  kept: string[];
}

export type GlueState = 'new' | 'loaded' | 'watching' | 'once' | 'stopping' | 'stopped';

/**
 * The Glue daemon as a library: loads handlers, keeps the container state, runs handlers on events.
 * `createGlue(options)` then `start()` (watch) or `runOnce()`; `stop()` to finish.
 */
export class Glue extends EventEmitter<GlueEvents> {
  readonly agent: Agent;
  readonly logger: Logger;
  /** This Glue's Prometheus registry and the facade handlers add their metrics through. */
  readonly metrics: Metrics;
  readonly address: string;
  private readonly options: GlueOptions;
  private readonly docker: Dockerode;
  private readonly store = new ContainerStore();
  private readonly queue = new KeyedQueue((err, key) =>
    this.logger.error(
      { container: key.slice(0, 12), err: errorMessage(err) },
      `unexpected error while dispatching an event${key ? ` of ${key.slice(0, 12)}` : ''}: ${errorMessage(err)}`,
    ),
  );
  /** The agent's signal: aborted once stop() has given handlers in flight their time (or when they are done). */
  private readonly abort = new AbortController();
  /** Stops the engine watcher: aborted as soon as stop() is called, so no new events come in. */
  private readonly watchAbort = new AbortController();
  /** hurry(): a stop in progress stops waiting for the runs in flight. */
  private readonly hurryAbort = new AbortController();
  /** One controller per handler run in flight; aborted only when the shutdown bound runs out (no listener per run on the daemon's signal). */
  private readonly runControllers = new Map<AbortController, string>();
  private readonly watcher: EngineWatcher;
  private entries: HandlerEntry[] = [];
  /** Handlers whose start hook ran (or that have none): the ones stop() calls the stop hook of, once. */
  private readonly handlersStarted = new Set<HandlerEntry>();
  private loaded = false;
  private phase: GlueState = 'new';
  /** Set by the first runOnce() or start(); the agent reports it to handlers. */
  private runMode: RunMode | undefined;
  private stopping: Promise<void> | undefined;
  private watching: Promise<void> | undefined;
  private noneTimer: NodeJS.Timeout | undefined;
  private nonePending = false;
  private accepting = true;
  /** Container events wait for the start-up `none` run, so `none` is always the first thing handlers see. */
  private startupNone: Promise<void> | undefined;
  private reloading: Promise<ReloadResult> | undefined;
  private engineConnected = false;
  private inventoryDone = false;
  private releaseStartup: (() => void) | undefined;

  constructor(options: GlueOptions = {}) {
    super();
    this.options = options;
    this.logger = options.logger ?? silentLogger();
    this.metrics = options.metrics ?? createMetrics();
    const endpoint = dockerEndpoint(options.dockerUrl);
    this.address = endpoint.address;
    this.docker = options.docker ?? createDocker(endpoint);
    this.watcher = new EngineWatcher({
      docker: this.docker,
      address: this.address,
      store: this.store,
      logger: this.logger,
      signal: this.watchAbort.signal,
      onEvent: (event) => this.dispatch(event),
      onConnection: (connected) => {
        this.engineConnected = connected;
        this.emit('engine', { connected });
      },
      onSynced: (first) => {
        if (first) this.inventoryDone = true;
        this.emit('synced', { first });
        if (first) this.runStartupNone();
        else if (this.entries.some((e) => e.events.has(NONE))) this.scheduleNone();
      },
      ...options.engine,
    });
    const store = this.store;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the agent's getter reads the live mode
    const glue = this;
    this.agent = {
      docker: this.docker,
      logger: this.logger,
      signal: this.abort.signal,
      inspect: (id) => store.get(id),
      containers: () => store.all(),
      refresh: (id) => this.refresh(id),
      triggerNone: () => this.scheduleNone(),
      metrics: this.metrics,
      engine: () => this.watcher.engine(),
      get mode() {
        return glue.runMode;
      },
    };
    observeGlue(this, this.metrics);
  }

  /** The loaded handlers' names, in the order they run. */
  get handlerNames(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** Reads and validates the INI files and constructs the handlers. Throws one ConfigError with every problem. */
  async load(): Promise<void> {
    if (this.loaded) return;
    if (this.phase === 'stopping' || this.phase === 'stopped')
      throw new GlueError('INVALID_STATE', `load() while ${this.phase}`);
    const o = this.options;
    const fromIni = this.fromIni;
    // Every problem found without importing anything is reported first, all at once: no handler
    // module is imported (no code an INI file names runs) while the configuration is known to be bad.
    // Once the files are sound, the classes are imported and the [params] of every file are checked,
    // again all reported together.
    const { configs, files } = fromIni ? await this.readConfigs() : { configs: [], files: [] };
    this.entries = await this.construct(configs, files);
    for (const h of o.handlers ?? []) {
      const instance = typeof h.handler === 'function' ? h.handler(this.agent) : h.handler;
      this.entries.push({
        name: h.name,
        file: undefined,
        text: undefined,
        events: new Set(h.events),
        triggersNone: h.triggersNone ?? false,
        timeoutMs: runBound(h.timeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS, instance),
        instance,
      });
    }
    const clash = claimProblems(this.entries);
    if (clash.length > 0) {
      this.entries = [];
      throw new ConfigError(clash);
    }
    this.loaded = true;
    if (this.phase === 'new') this.phase = 'loaded';
    this.logger.info(
      { handlers: this.handlerNames },
      `loaded ${this.entries.length} handler${this.entries.length === 1 ? '' : 's'}`,
    );
  }

  /** Whether the handlers come from INI files (or `configs`), not only from inline `handlers`. */
  private get fromIni(): boolean {
    const o = this.options;
    return o.configs !== undefined || o.configDirs !== undefined || o.handlers === undefined;
  }

  /** The INI files (or `options.configs`): every problem of every file at once, nothing imported. */
  private async readConfigs(): Promise<{ configs: readonly HandlerConfig[]; files: readonly string[] }> {
    const o = this.options;
    if (o.configs !== undefined) return { configs: o.configs, files: o.configs.map((c) => c.file) };
    const read = await readHandlerConfigs(await resolveConfigDirs(o.configDirs, o.cwd));
    if (read.problems.length > 0) throw new ConfigError(byFileOrder(read.problems, read.files));
    return read;
  }

  /** Imports the classes and constructs the handlers of `configs`; every [params] problem at once. */
  private async construct(configs: readonly HandlerConfig[], files: readonly string[]): Promise<HandlerEntry[]> {
    const loaded = await loadHandlers(configs, this.agent, this.options.resolveFrom ?? []);
    if (loaded.problems.length > 0) throw new ConfigError(byFileOrder(loaded.problems, files));
    return loaded.handlers.map(({ config, instance }) => ({
      name: config.name,
      file: config.file,
      text: config.ini.text,
      events: config.events,
      triggersNone: config.triggersNone,
      timeoutMs: runBound(config.timeoutMs, instance),
      instance,
      ...(config.filter ? { filter: config.filter } : {}),
    }));
  }

  /**
   * Reads the INI files again (what SIGHUP does in `glue -w`). Every file is read and every new or
   * changed handler constructed first; only when all of that succeeds does the set switch: handlers
   * whose file went, changed or was disabled are stopped, the new ones started, then `none` runs so
   * they see every container. A ConfigError (every problem of every file) leaves the running set as it
   * was. Handlers whose file did not change keep running untouched. (A handler module's code is not
   * imported again: Node caches modules; restart Glue for that.)
   */
  reload(): Promise<ReloadResult> {
    if (this.phase !== 'watching')
      return Promise.reject(new GlueError('INVALID_STATE', `reload() while ${this.phase}`));
    if (!this.fromIni) return Promise.resolve({ started: [], stopped: [], kept: this.handlerNames });
    this.reloading ??= this.doReload()
      .then(
        (result) => {
          this.emit('reload', { ok: true });
          return result;
        },
        (err: unknown) => {
          this.emit('reload', { ok: false });
          throw err;
        },
      )
      .finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  private async doReload(): Promise<ReloadResult> {
    const { configs, files } = await this.readConfigs();
    const plan = planReload(this.entries, configs);
    const toLoad = plan.order.flatMap((x) => ('load' in x ? [x.load] : []));
    const fresh = await this.construct(toLoad, files);
    const byFile = new Map(fresh.map((e) => [e.file, e]));
    const inline = this.entries.filter((e) => e.file === undefined);
    const clash = claimProblems([
      ...plan.order.flatMap((x) => ('keep' in x ? [x.keep] : (byFile.get(x.load.file) ?? []))),
      ...inline,
    ]);
    if (clash.length > 0) throw new ConfigError(clash);
    // The old handlers stop first (two of them must never write the same files), the new ones start
    // before they see an event, then the set switches.
    this.entries = this.entries.filter((e) => !plan.stop.includes(e));
    for (const e of plan.stop) await this.stopHandler(e);
    const started: string[] = [];
    const failed = new Set<HandlerEntry>();
    for (const e of fresh) {
      try {
        await e.instance.start?.();
        this.handlersStarted.add(e);
        started.push(e.name);
      } catch (err) {
        failed.add(e);
        this.logger.error(
          { handler: e.name, file: e.file, err: errorMessage(err) },
          `[${e.name}] start failed after the reload, it does not run: ${errorMessage(err)}`,
        );
      }
    }
    const next = plan.order.flatMap((x) => ('keep' in x ? [x.keep] : (byFile.get(x.load.file) ?? [])));
    this.entries = [...next.filter((e) => !failed.has(e)), ...inline];
    const result: ReloadResult = {
      started,
      stopped: plan.stop.map((e) => e.name),
      kept: plan.order.flatMap((x) => ('keep' in x ? [x.keep.name] : [])),
    };
    this.logger.info(
      result,
      `reloaded the INI files: ${result.started.length} started, ${result.stopped.length} stopped, ${result.kept.length} unchanged`,
    );
    if (fresh.length > 0) this.scheduleNone(0);
    return result;
  }

  /** Where this Glue is in its life (see GlueState). */
  get state(): GlueState {
    return this.phase;
  }

  /**
   * `glue check`: loads every INI file (nothing starts) and, when the engine answers, checks every
   * container's `glue_*` labels by the routing grammar and each handler's `checkContainer`. Never
   * throws for a bad file or an unreachable engine: the report says so.
   */
  async check(): Promise<CheckReport> {
    let config: ConfigProblem[] = [];
    try {
      await this.load();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      config = [...err.problems];
    }
    let containers: ContainerInspectInfo[];
    try {
      containers = [
        ...(await inspectAll(this.docker, this.options.engine?.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS)).values(),
      ];
    } catch (err) {
      return {
        config,
        engine: { checked: false, reason: `cannot reach the Docker engine at ${this.address}: ${errorMessage(err)}` },
        labels: [],
      };
    }
    return {
      config,
      engine: { checked: true, containers: containers.length },
      labels: containerProblems(containers, this.entries, { unreadLabels: config.length === 0 }),
    };
  }

  /**
   * Is Glue doing its job: watching, the engine's event stream up, the first inventory done, and every
   * handler's own `ready()` check passing (a check that throws or takes over `timeoutMs` fails).
   */
  async readiness(timeoutMs = 2_000): Promise<ReadyCheck[]> {
    const checks: ReadyCheck[] = [
      this.phase === 'watching' ? { name: 'watching' } : { name: 'watching', problem: `Glue is ${this.phase}` },
      this.engineConnected ? { name: 'engine' } : { name: 'engine', problem: `no event stream from ${this.address}` },
      this.inventoryDone ? { name: 'inventory' } : { name: 'inventory', problem: 'the first inventory is not done' },
    ];
    const own = await Promise.all(
      this.entries.map(async (e): Promise<ReadyCheck | undefined> => {
        if (typeof e.instance.ready !== 'function') return undefined;
        try {
          const problem = await withTimeout(Promise.resolve(e.instance.ready()), timeoutMs, 'HANDLER_TIMEOUT');
          return problem === undefined ? { name: e.name } : { name: e.name, problem };
        } catch (err) {
          const why = err instanceof TimeoutError ? `took over ${timeoutMs} ms` : errorMessage(err);
          return { name: e.name, problem: `its check failed: ${why}` };
        }
      }),
    );
    return [...checks, ...own.filter((c): c is ReadyCheck => c !== undefined)];
  }

  /** Moves to `to` from one of `from`, or throws INVALID_STATE saying what was asked and why not. */
  private enter(to: 'watching' | 'once', call: string): void {
    if (this.phase !== 'new' && this.phase !== 'loaded') {
      throw new GlueError(
        'INVALID_STATE',
        `${call} while ${this.phase}: a Glue runs once or watches, one time; create another with createGlue()`,
      );
    }
    this.phase = to;
  }

  /** `-1`: inventory the containers, run the `none` handlers once, stop. Throws if the engine is unreachable. */
  async runOnce(): Promise<RunOnceResult> {
    this.enter('once', 'runOnce()');
    this.runMode = 'once';
    await this.load();
    try {
      await this.watcher.snapshot();
    } catch (err) {
      throw new GlueError(
        'ENGINE_UNREACHABLE',
        `cannot reach the Docker engine at ${this.address}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    await this.startHandlers();
    // Through the queue, so a stop() meanwhile waits for the run in flight like in watch mode.
    let runs: HandlerRun[] = [];
    await this.queue.push('', async () => {
      runs = await this.runHandlers(noneEvent(), undefined);
    });
    await this.stop();
    return { runs, failed: runs.filter((r) => !r.ok).length };
  }

  /** `-w`: starts watching in the background and resolves once handlers are loaded and started. */
  async start(): Promise<void> {
    this.enter('watching', 'start()');
    this.runMode = 'watch';
    await this.load();
    await this.startHandlers();
    this.startupNone = new Promise((resolve) => (this.releaseStartup = resolve));
    this.watching = this.watcher.run();
  }

  /**
   * Stops taking events and starting handler runs, lets the runs in flight finish (up to
   * `shutdownTimeoutMs`, then their `ctx.signal` aborts), calls stop hooks. Idempotent. Called while
   * `runOnce()` is going, it ends that run early too (the `none` handlers not started yet are skipped).
   */
  stop(): Promise<void> {
    if (this.stopping === undefined) {
      this.phase = 'stopping';
      this.stopping = this.doStop().finally(() => {
        this.phase = 'stopped';
      });
    }
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    // 1. Stop taking events: the watcher closes the stream, dispatch() drops anything still arriving.
    this.accepting = false;
    clearTimeout(this.noneTimer);
    this.releaseStartup?.();
    this.watchAbort.abort();
    const bound = this.shutdownBoundMs;
    const deadline = performance.now() + bound;
    await this.watching;
    if (this.runControllers.size > 0) {
      const runs = [...this.runControllers.values()];
      this.logger.info(
        { inFlight: runs, boundMs: bound },
        `shutdown: waiting up to ${bound / 1000} s for ${runs.length} handler run(s) in flight: ${runs.join('; ')}`,
      );
    }
    // 2. Let the runs in flight finish, up to the bound (queued events start no new run, see runHandlers).
    let drained = true;
    try {
      const hurried = new Promise<never>((_, reject) => {
        if (this.hurryAbort.signal.aborted) reject(new Error('hurried'));
        this.hurryAbort.signal.addEventListener('abort', () => reject(new Error('hurried')), { once: true });
      });
      await Promise.race([
        withTimeout(this.queue.idle(), Math.max(0, deadline - performance.now()), 'timeout'),
        hurried,
      ]);
    } catch {
      drained = false;
    }
    // 3. Only now tell handlers to give up: the runs still going see their ctx.signal abort.
    this.abort.abort();
    for (const controller of this.runControllers.keys()) controller.abort();
    if (!drained) {
      const runs = [...this.runControllers.values()];
      this.logger.warn(
        { inFlight: runs, waitedMs: bound },
        `shutdown: cancelling the handler run(s) still going${runs.length > 0 ? `: ${runs.join('; ')}` : ''}`,
      );
      // A cancelled run (a script getting SIGTERM) gets a moment to end before the stop hooks.
      const grace = this.hurryAbort.signal.aborted ? HURRY_GRACE_MS : ABORT_GRACE_MS;
      await withTimeout(this.queue.idle(), Math.min(bound, grace), 'timeout').catch(() => undefined);
    }
    for (const e of this.entries) await this.stopHandler(e);
  }

  /**
   * A second SIGTERM/SIGINT: a stop in progress (or the next one) stops waiting for the runs in flight,
   * cancels them at once (a script gets SIGTERM) and goes on to the stop hooks, which still run: a
   * managed HAProxy is stopped, a lease revoked.
   */
  hurry(): void {
    this.hurryAbort.abort();
  }

  /** How long stop() gives runs in flight, and each stop hook. */
  private get shutdownBoundMs(): number {
    return this.options.shutdownTimeoutMs ?? 10_000;
  }

  /** Waits until no event is queued or being handled (tests and embedders). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Calls the start hooks in order; if one fails, the stop hooks of those already started run (in reverse) before it throws. */
  private async startHandlers(): Promise<void> {
    const started: HandlerEntry[] = [];
    for (const e of this.entries) {
      try {
        await e.instance.start?.();
        started.push(e);
        this.handlersStarted.add(e);
      } catch (err) {
        for (const done of started.reverse()) await this.stopHandler(done);
        throw new GlueError('HANDLER_FAILED', `[${e.name}] start failed: ${errorMessage(err)}`, {
          handler: e.name,
          file: e.file,
          cause: err,
        });
      }
    }
  }

  /** Calls the stop hook of a started handler, at most once, bounded; a failure is logged. */
  private async stopHandler(e: HandlerEntry): Promise<void> {
    if (!this.handlersStarted.delete(e) || !e.instance.stop) return;
    const bound = this.shutdownBoundMs;
    try {
      await withTimeout(Promise.resolve(e.instance.stop()), bound, `stop() took over ${bound} ms`);
    } catch (err) {
      this.logger.error(
        { handler: e.name, file: e.file, err: errorMessage(err) },
        `[${e.name}] stop failed: ${errorMessage(err)}`,
      );
    }
  }

  private async refresh(id: string): Promise<ContainerInspectInfo | undefined> {
    try {
      const info = await this.docker.getContainer(id).inspect();
      this.store.set(info);
      return this.store.get(info.Id) ?? info;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  private dispatch(event: GlueEvent): void {
    if (!this.accepting) return;
    this.emit('event', event);
    void this.queue.push(event.id, async () => {
      if (this.startupNone) await this.startupNone;
      if (!this.accepting) return;
      let info = this.store.get(event.id);
      // Re-inspected before the handlers run (a destroyed container is gone: its last inspection stays).
      if (STATE_CHANGING_ACTIONS.has(event.action) && event.action !== 'destroy') {
        try {
          info = (await this.refresh(event.id)) ?? info;
        } catch (err) {
          this.logger.warn(
            { container: event.id.slice(0, 12), err: errorMessage(err) },
            'cannot re-inspect container; handlers get its last inspection',
          );
        }
      }
      const runs = await this.runHandlers(event, info);
      if (event.action === 'destroy') this.store.delete(event.id);
      if (runs.some((r) => this.entries.find((e) => e.name === r.handler)?.triggersNone)) this.scheduleNone();
    });
  }

  private runStartupNone(): void {
    void this.queue.push('', async () => {
      try {
        await this.runHandlers(noneEvent(), undefined);
      } finally {
        this.releaseStartup?.();
      }
    });
  }

  private scheduleNone(delayMs = this.options.noneDebounceMs ?? 200): void {
    if (this.nonePending || !this.accepting) return;
    this.nonePending = true;
    this.noneTimer = setTimeout(() => {
      void this.queue.push('', async () => {
        this.nonePending = false;
        await this.runHandlers(noneEvent(), undefined);
      });
    }, delayMs);
  }

  /** Runs the matching handlers in file-name order; each at most once; failures and timeouts are logged, never thrown. */
  private async runHandlers(event: GlueEvent, info: ContainerInspectInfo | undefined): Promise<HandlerRun[]> {
    const runs: HandlerRun[] = [];
    for (const entry of this.entries) {
      // Every event updates a filtered handler's view (its destroy too), whether it runs on it or not.
      const visible = this.inView(entry, event, info);
      if (!matchesEvent(entry.events, event.action) || !visible) continue;
      // Once stop() was called no new run starts: the runs already going are the ones it waits for.
      if (!this.accepting) break;
      runs.push(await this.runOne(entry, event, info));
    }
    return runs;
  }

  /**
   * A filtered handler (`[handler] only-*`) sees a container's events while the container is in its
   * filter, and the events of one it saw until that one is destroyed (a container that left the
   * filter, say by leaving a network, still reaches the handler with its die and destroy).
   */
  private inView(entry: HandlerEntry, event: GlueEvent, info: ContainerInspectInfo | undefined): boolean {
    if (entry.filter === undefined || event.action === NONE || event.id === '') return true;
    const seen = (entry.seen ??= new Set());
    const visible = matchesFilter(entry.filter, info) || seen.has(event.id);
    if (event.action === 'destroy') seen.delete(event.id);
    else if (visible) seen.add(event.id);
    return visible;
  }

  private async runOne(
    entry: HandlerEntry,
    event: GlueEvent,
    info: ContainerInspectInfo | undefined,
  ): Promise<HandlerRun> {
    if (entry.instance.serial !== true) return this.runNow(entry, event, info);
    // One run at a time for a serial handler, in arrival order; its timeout starts when it starts.
    const previous = entry.tail ?? Promise.resolve();
    let release!: () => void;
    entry.tail = new Promise((r) => (release = r));
    await previous;
    try {
      return await this.runNow(entry, event, info);
    } finally {
      release();
    }
  }

  private async runNow(
    entry: HandlerEntry,
    event: GlueEvent,
    info: ContainerInspectInfo | undefined,
  ): Promise<HandlerRun> {
    const controller = new AbortController();
    if (this.abort.signal.aborted) controller.abort();
    const context: HandlerContext = { event, container: info, signal: controller.signal };
    const name = containerName(info) || event.attributes.name || '';
    const short = event.id.slice(0, 12);
    this.runControllers.set(controller, `[${entry.name}] ${event.action}${short ? ` ${name || short}` : ''}`);
    const started = performance.now();
    const run: HandlerRun = {
      handler: entry.name,
      file: entry.file,
      event: event.action,
      containerId: event.id,
      containerName: name,
      durationMs: 0,
      ok: true,
      timedOut: false,
      eventTimeNano: event.timeNano,
    };
    const fields = {
      handler: entry.name,
      file: entry.file,
      event: event.action,
      container: short,
      containerName: name,
    };
    const work = Promise.resolve().then(() => entry.instance.handle(event.action, event.id, context));
    try {
      await withTimeout(work, entry.timeoutMs, 'HANDLER_TIMEOUT');
      run.durationMs = Math.round(performance.now() - started);
      this.logger.info(
        { ...fields, durationMs: run.durationMs },
        `[${entry.name}] ${event.action}${short ? ` ${name || short}` : ''} handled`,
      );
    } catch (err) {
      run.durationMs = Math.round(performance.now() - started);
      run.ok = false;
      // Only Glue's own bound: a handler that throws new Error('HANDLER_TIMEOUT') has failed, not timed out.
      if (err instanceof TimeoutError) {
        run.timedOut = true;
        controller.abort();
        run.error = new GlueError(
          'HANDLER_TIMEOUT',
          `[${entry.name}] still running after ${entry.timeoutMs} ms on ${event.action}; the next handler goes on`,
          { handler: entry.name, file: entry.file },
        );
        this.logger.warn({ ...fields, durationMs: run.durationMs }, (run.error as Error).message);
        work.catch((late: unknown) =>
          this.logger.error(
            { ...fields, err: errorMessage(late) },
            `[${entry.name}] failed (after its timeout) on ${event.action}: ${errorMessage(late)}`,
          ),
        );
      } else {
        run.error = err;
        this.logger.error(
          { ...fields, durationMs: run.durationMs, err: errorMessage(err), code: (err as { code?: unknown }).code },
          `[${entry.name}] failed on ${event.action}${short ? ` of ${name || short} (${short})` : ''}: ${errorMessage(err)}`,
        );
        // The stack is for whoever debugs the handler, not for the operator's line above.
        if (err instanceof Error && err.stack)
          this.logger.debug({ ...fields, stack: err.stack }, `[${entry.name}] stack of the failure on ${event.action}`);
      }
    } finally {
      this.runControllers.delete(controller);
    }
    this.emit('handler', run);
    return run;
  }
}

/** Glue's bound on one run: the configured one, raised to the handler's own `runTimeoutMs` if that is longer. */
function runBound(configuredMs: number, instance: Handler): number {
  const own = instance.runTimeoutMs;
  return typeof own === 'number' && Number.isFinite(own) && own > configuredMs ? own : configuredMs;
}

/** Problems grouped by file, files in the order handlers run (stable within a file). */
function byFileOrder(problems: readonly ConfigProblem[], files: readonly string[]): ConfigProblem[] {
  const rank = (p: ConfigProblem): number => {
    const i = files.indexOf(p.file);
    return i === -1 ? files.length : i;
  };
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i)
    .map(({ p }) => p);
}

export function createGlue(options: GlueOptions = {}): Glue {
  return new Glue(options);
}
