/**
 * Apply = render -> skip if unchanged -> temp file beside the target -> `haproxy -c` -> atomic rename
 * -> reload (or, when only servers changed, the runtime API). Requests are coalesced (debounce with an
 * upper bound on delay) and applies never overlap.
 */
import { readdir, readFile, rm, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorMessage, GlueError, type Logger } from '@glue/core';
import { execa } from 'execa';
import { checkConfig, runtimeCommand, workerPid } from './haproxy-io.js';
import { ManagedHaproxy } from './managed.js';
import { type BalancerModel, structureKey } from './model.js';
import { planRetire, planRuntimeOps, reloadReasons, retireCommands, type RuntimeCommand, summarize } from './runtime-plan.js';
import { type HostSlot, hostMapText, placeModel, planSlots, releaseSlots, sameAssignment, type SlotPlan, slotHosts, slotName } from './slots.js';
import { boundPorts, TcpGuard } from './tcp-guard.js';
import { type RenderSettings, Renderer, templateContext } from './template.js';

export type Mode = 'managed' | 'external' | 'file';

/** Checked temp files beside the config and map: `commit` renames them over the old ones, `discard` removes what is left. */
interface Staged {
  commit: () => Promise<void>;
  discard: () => Promise<void>;
}

/** A reload failed on TCP ports that cannot be bound; those services are now left out: apply again. */
class BindRetry extends Error {}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ApplierOptions {
  mode: Mode;
  configFile: string;
  haproxyBin: string;
  /** `external` mode: argv of the reload command (no shell). */
  reloadCommand: readonly string[];
  /** Runtime API socket; '' disables the fast path. */
  runtimeSocket: string;
  /** `managed` mode: the master CLI socket. */
  masterSocket: string;
  renderer: Renderer;
  settings: RenderSettings;
  /** Quiet time that ends a burst. */
  debounceMs: number;
  /** Longest a request waits for its apply to start, however long the burst. */
  maxDelayMs: number;
  /** Least time between two reloads: structural changes inside it wait and coalesce. */
  minReloadIntervalMs: number;
  /** Use the runtime API when only servers change. */
  fastPath: boolean;
  /**
   * Host map file ('' = host-only routes use ACL rules, every new host reloads). Always written beside
   * the config; the runtime API adds/deletes its entries when the rendered config uses it.
   */
  hostMap?: string;
  /** Free host slots each reload declares: new hosts that can join without a reload. */
  spareBackends?: number;
  /**
   * How long a removed server stays in maintenance before `del server` (default 30 s). HAProxy 2.6
   * lets a server be deleted while a stream still retries a connection to it and then crashes when
   * that stream comes back (haproxy#2298, fixed in 2.9): outlast `retries` x `timeout connect`.
   */
  deleteGraceMs?: number;
  checkTimeoutMs: number;
  reloadTimeoutMs: number;
  logger: Logger;
  /** The desired model, computed fresh from the containers at apply time. */
  compute: () => BalancerModel;
  /**
   * Whether a container still runs, and so still holds the address its servers point to. The servers
   * of one that does not are retired at once (maintenance and `shutdown sessions`), even while a
   * reload is held back: Docker may give its address to another container.
   */
  alive: (containerId: string) => boolean;
  /** Called to name the handler in errors. */
  handlerName: string;
  /**
   * Probe the ports of new TCP frontends before a reload and leave out the taken ones (default true).
   * Off, only HAProxy's "cannot bind socket" alert of a failed reload leaves them out (tests of that path).
   */
  bindProbe?: boolean;
  /** First retry of a TCP port left out because it could not be bound (default 5 s, doubling to 60 s). */
  tcpRetryMs?: number;
}

export interface ApplierStats {
  applies: number;
  skipped: number;
  reloads: number;
  runtimeApplies: number;
  failures: number;
  lastCheckMs: number;
  lastRenderMs: number;
}

interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
  firstAt: number;
  /** A caller will see this batch's failure (else the Applier logs it itself). */
  reported: boolean;
}

function deferred(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Callers may not wait (fire-and-forget requests): never an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject, firstAt: Date.now(), reported: false };
}

const withoutServers = (m: BalancerModel): BalancerModel => ({
  http: m.http.map((b) => ({ ...b, servers: [] })),
  tcp: m.tcp.map((s) => ({ ...s, servers: [] })),
});

/** A model rendered with its slot placement: everything an apply compares and writes. */
interface Prepared {
  /** Host-only backends renamed to their slots. */
  model: BalancerModel;
  plan: SlotPlan;
  text: string;
  /** The host map file's content ('' without a host map). */
  mapText: string;
  /** What needs a reload when it changes. */
  structure: string;
}

export class Applier {
  readonly stats: ApplierStats = { applies: 0, skipped: 0, reloads: 0, runtimeApplies: 0, failures: 0, lastCheckMs: 0, lastRenderMs: 0 };
  readonly managed: ManagedHaproxy | undefined;
  private pending: Batch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private due = false;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** What HAProxy runs now (undefined: unknown, the next apply reloads). */
  private live: Prepared | undefined;
  /** The slot plan last written: hosts keep their slots across renders, reloads and failures. */
  private plan: SlotPlan | undefined;
  private lastText: string | undefined;
  /** Servers set to maintenance whose `del server` HAProxy refused (connections still open). */
  private readonly draining = new Map<string, { backend: string; server: string; notBefore: number }>();
  /** Servers of `live` put in maintenance with their sessions shut down because their container died. */
  private readonly retired = new Set<string>();
  private tmpCounter = 0;
  private lastReloadAt = 0;
  private retryDelay = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  /** How long the batch being applied waited (debounce, holds): for the log. */
  private batchAge = 0;
  /** TCP services whose port cannot be bound: left out (the other routes apply) until it can. */
  private readonly tcpGuard: TcpGuard | undefined;
  /** Ports the config HAProxy runs binds (undefined: not known yet). */
  private bound: Set<number> | undefined;
  private tempsSwept = false;
  private redispatchChecked = false;

  constructor(private readonly o: ApplierOptions) {
    if (o.mode === 'managed') {
      this.managed = new ManagedHaproxy({ haproxyBin: o.haproxyBin, configFile: o.configFile, masterSocket: o.masterSocket, runtimeSocket: o.runtimeSocket, logger: o.logger, timeoutMs: o.reloadTimeoutMs });
    }
    if (o.mode !== 'file') {
      this.tcpGuard = new TcpGuard({
        address: o.settings.tcpAddress,
        logger: o.logger,
        onRetry: () => void this.request(false),
        ...(o.bindProbe !== undefined ? { probe: o.bindProbe } : {}),
        ...(o.tcpRetryMs !== undefined ? { minRetryMs: o.tcpRetryMs } : {}),
      });
    }
  }

  /**
   * Managed mode: starts HAProxy. Glue's core starts handlers before its first container listing, so
   * the model is still empty here: when the config file of an earlier run is on disk and still passes
   * `haproxy -c`, HAProxy starts on it (a HAProxy left running by that run hands over without a gap in
   * routing) and the first apply reloads it with the current containers; otherwise on the empty config.
   */
  async start(): Promise<void> {
    await this.sweepTemps();
    if (!this.managed) return;
    const previous = await this.lastGoodConfig();
    if (previous !== undefined) {
      try {
        await this.managed.start();
        this.bound = boundPorts(previous);
        this.o.logger.info({ config: this.o.configFile }, `HAProxy started on the last good config ${this.o.configFile}; the first apply reloads it with the current containers`);
        return;
      } catch (err) {
        await this.managed.stop();
        this.o.logger.warn({ config: this.o.configFile, err: errorMessage(err) }, `HAProxy did not start on the last good config ${this.o.configFile}, starting it with an empty one: ${errorMessage(err)}`);
      }
    }
    const p = this.prepare(this.o.compute(), true);
    await this.write(p);
    await this.managed.start();
    this.bound = boundPorts(p.text);
    this.live = p;
  }

  /** The config file on disk if it passes `haproxy -c` (with the host map beside it), else undefined. */
  private async lastGoodConfig(): Promise<string | undefined> {
    let text: string;
    try {
      text = await readFile(this.o.configFile, 'utf8');
    } catch {
      return undefined;
    }
    // Written for other sockets (the params changed): HAProxy would not answer where Glue waits for it.
    if (!text.includes(this.o.runtimeSocket)) return undefined;
    const check = await checkConfig(this.o.haproxyBin, this.o.configFile, this.o.checkTimeoutMs);
    if (check.ok) return text;
    this.o.logger.warn({ config: this.o.configFile, haproxy: check.output }, `the config ${this.o.configFile} left by an earlier run fails haproxy -c, HAProxy starts with an empty one:\n${check.output}`);
    return undefined;
  }

  /** Removes `.<name>.glue-<pid>-<n>.tmp` files that runs which are gone left beside the config and the host map. */
  private async sweepTemps(): Promise<void> {
    if (this.tempsSwept) return;
    this.tempsSwept = true;
    const targets = [this.o.configFile, ...(this.hostMap ? [this.hostMap] : [])];
    for (const target of targets) {
      const dir = dirname(target);
      const prefix = `.${basename(target)}.glue-`;
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
        const pid = /^(\d+)-\d+\.tmp$/.exec(name.slice(prefix.length))?.[1];
        if (pid === undefined || Number(pid) === process.pid || processAlive(Number(pid))) continue;
        await rm(join(dir, name), { force: true });
        this.o.logger.info({ file: join(dir, name) }, `removed ${join(dir, name)}, left by Glue process ${pid} which is gone`);
      }
    }
  }

  /** TCP ports left out because they cannot be bound (tests, status). */
  get excludedTcpPorts(): number[] {
    return this.tcpGuard?.ports ?? [];
  }

  /** The desired model without the TCP services whose port cannot be bound. */
  private desired(): BalancerModel {
    const full = this.o.compute();
    return this.tcpGuard ? this.tcpGuard.filter(full) : full;
  }

  private get hostMap(): string {
    return this.o.hostMap ?? '';
  }

  /** Asks for an apply; resolves when an apply that saw this request finished (the batch's first request rejects if it failed). */
  request(external = true): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const batch = (this.pending ??= deferred());
    const first = external && !batch.reported;
    if (first) batch.reported = true;
    clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.o.debounceMs, batch.firstAt + this.o.maxDelayMs - Date.now()));
    this.due = false;
    this.timer = setTimeout(() => {
      this.due = true;
      this.kick();
    }, wait);
    // A failed apply is reported once, to the first caller of the batch, not once per coalesced event.
    return first ? batch.promise : batch.promise.catch(() => undefined);
  }

  /** Resolves once no apply is running or waiting (tests, embedders). */
  async settled(): Promise<void> {
    while (this.running || this.pending) {
      await (this.running ?? this.pending?.promise)?.catch(() => undefined);
      await new Promise((r) => setImmediate(r));
    }
  }

  private kick(): void {
    if (this.running || !this.due || !this.pending) return;
    const hold = this.reloadHold();
    if (hold > 0) {
      // A structural change too soon after the last reload: let the burst pile up (one reload for all).
      // Servers of dead containers do not wait for it.
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void (this.running ?? Promise.resolve()).then(() => this.kick()), hold);
      this.running = this.retireDead().finally(() => {
        this.running = undefined;
      });
      return;
    }
    const batch = this.pending;
    this.pending = undefined;
    this.due = false;
    this.batchAge = Date.now() - batch.firstAt;
    this.running = this.apply()
      .then(
        () => {
          this.retryDelay = 0;
          batch.resolve();
        },
        (err: unknown) => {
          if (!batch.reported) this.o.logger.error({ err: errorMessage(err) }, `apply failed: ${errorMessage(err)}`);
          batch.reject(err);
          this.scheduleRetry();
        },
      )
      .finally(() => {
        this.running = undefined;
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

  /** How long a structural apply must still wait (min-reload-interval); 0 for a servers-only change. */
  private reloadHold(): number {
    if (this.o.minReloadIntervalMs <= 0 || this.o.mode === 'file' || !this.live) return 0;
    const wait = this.lastReloadAt + this.o.minReloadIntervalMs - Date.now();
    if (wait <= 0) return 0;
    try {
      return this.prepare(this.desired(), false, false).structure === this.live.structure ? 0 : wait;
    } catch {
      return 0;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.drainTimer);
    this.tcpGuard?.stop();
    await this.running?.catch(() => undefined);
    this.pending?.resolve();
    this.pending = undefined;
    await this.managed?.stop();
  }

  /**
   * Places host-only routes in slots (keeping every host's slot; `refresh` declares a fresh pool of
   * spares, for a reload) and renders.
   */
  private prepare(model: BalancerModel, refresh: boolean, withText = true): Prepared {
    const started = performance.now();
    const hostMap = this.hostMap;
    const settings = { ...this.o.settings, hostMap };
    try {
      const plan = hostMap ? planSlots(slotHosts(model), this.plan, this.o.spareBackends ?? 0, refresh) : { declared: 0, assignment: new Map<string, number>() };
      const placed = hostMap ? placeModel(model, plan) : { model, slots: [] as HostSlot[] };
      // The structure alone (min-reload-interval holds) needs no render of the built-in template.
      const builtIn = this.o.renderer.templatePath === undefined;
      const text = withText || !builtIn ? this.o.renderer.render(templateContext(model, settings, placed)) : '';
      // The built-in template's structure is the model's (host-only routes: only how many slots it
      // declares); a user template may put anything anywhere, so its structure is what it renders
      // without servers.
      let structure: string;
      if (builtIn) {
        const key = hostMap ? structureKey({ http: placed.model.http.filter((b) => b.prefix !== ''), tcp: placed.model.tcp }) : structureKey(placed.model);
        structure = `${key}\0${plan.declared}`;
      } else {
        const bare = withoutServers(model);
        structure = this.o.renderer.render(templateContext(bare, settings, hostMap ? placeModel(bare, plan) : undefined));
      }
      this.stats.lastRenderMs = Math.round(performance.now() - started);
      if (!builtIn && withText && !this.redispatchChecked) {
        this.redispatchChecked = true;
        if (!/^\s*option\s+redispatch\b/m.test(text)) {
          this.o.logger.warn({ template: this.o.renderer.templatePath }, `the template ${this.o.renderer.templatePath ?? ''} renders no "option redispatch": a request caught by a container that died is retried against its address, which Docker may have given to another host's container (the built-in template sets "retries 3" and "option redispatch 1")`);
        }
      }
      return { model: placed.model, plan, text, mapText: hostMap ? hostMapText(plan) : '', structure };
    } catch (err) {
      throw new GlueError('HANDLER_FAILED', `cannot render the HAProxy template ${this.o.renderer.templatePath ?? '(built-in)'}: ${errorMessage(err)}; HAProxy keeps the old config`, { handler: this.o.handlerName, cause: err });
    }
  }

  private async apply(): Promise<void> {
    this.stats.applies += 1;
    try {
      await this.applyInner();
    } catch (err) {
      this.stats.failures += 1;
      throw err;
    }
  }

  private async applyInner(): Promise<void> {
    await this.sweepTemps();
    const full = this.o.compute();
    // A reload HAProxy fails because a TCP frontend's port cannot be bound: that service is left out
    // and the rest applied again at once (each round leaves out at least one more, so this ends).
    for (;;) {
      try {
        await this.applyModel(full);
        return;
      } catch (err) {
        if (!(err instanceof BindRetry)) throw err;
      }
    }
  }

  /**
   * Retires the servers HAProxy runs whose container died: `set server … state maint` and
   * `shutdown sessions server …`. Best effort (a failure is logged; the apply that follows removes
   * them anyway).
   */
  private async retireDead(): Promise<void> {
    if (!this.live || !this.o.runtimeSocket || this.o.mode === 'file') return;
    const ids = planRetire(this.live.model, this.o.alive, this.retired);
    for (const id of ids) {
      try {
        await this.execute(retireCommands(id));
        this.retired.add(id);
      } catch (err) {
        this.o.logger.warn({ server: id, err: errorMessage(err) }, `could not shut down the sessions of ${id}, whose container stopped: ${errorMessage(err)}`);
      }
    }
    if (ids.length > 0) this.o.logger.info({ servers: ids }, `container stopped: ${summarize(ids)} in maintenance, sessions shut down`);
  }

  /**
   * Gives vacated host slots back to the pool once their backends hold no stream (`show stat`:
   * no current session, nothing queued), so no request of the host that left can be redispatched to
   * the host that comes next. Without an answer they stay vacated (until the next reload).
   */
  private async releaseVacated(): Promise<void> {
    const vacated = this.plan?.vacated;
    if (!this.plan || !vacated || vacated.size === 0 || !this.o.runtimeSocket) return;
    let csv: string;
    try {
      csv = await runtimeCommand(this.o.runtimeSocket, 'show stat -1 2 -1', /./s);
    } catch {
      return;
    }
    const empty = new Set<number>();
    for (const line of csv.split('\n')) {
      const [name, kind, qcur, , scur] = line.split(',');
      if (kind !== 'BACKEND' || qcur !== '0' || scur !== '0') continue;
      for (const i of vacated.values()) if (name === slotName(i)) empty.add(i);
    }
    if (empty.size > 0) this.plan = releaseSlots(this.plan, empty);
  }

  private async applyModel(full: BalancerModel): Promise<void> {
    const started = performance.now();
    const guard = this.tcpGuard;
    await this.retireDead();
    await this.releaseVacated();
    let model = full;
    if (guard) {
      if (this.bound === undefined) this.bound = boundPorts(await readFile(this.o.configFile, 'utf8').catch(() => ''));
      guard.filter(full);
      await guard.review(full, this.bound, false);
      model = guard.filter(full);
    }
    let p = this.prepare(model, this.o.mode === 'file');
    if (`${p.text}\0${p.mapText}` === this.lastText && this.live !== undefined) {
      this.stats.skipped += 1;
      await this.retryDrained();
      return;
    }
    const live = this.live;
    // Host map entries can only change at run time when the running config routes through the map.
    const mapOk = sameAssignment(live?.plan ?? p.plan, p.plan) || (this.hostMap !== '' && p.text.includes(this.hostMap));
    if (this.o.mode !== 'file' && live && live.structure === p.structure && mapOk && this.o.fastPath && this.o.runtimeSocket && (this.o.mode !== 'managed' || this.managed?.running)) {
      // Only servers and host map entries changed. A user template may print anything on a server
      // line, so its file is checked first and a config HAProxy would refuse never reaches it. The
      // built-in template's server lines hold only values that passed the label grammar, in a
      // structure HAProxy already accepted, so the runtime API goes first (routable in milliseconds;
      // `haproxy -c` alone takes 30-150 ms on a small machine) and the file is checked after. Either
      // way the checked files are renamed last, so a restart or the next reload agrees with HAProxy.
      const staged = this.o.renderer.templatePath !== undefined ? await this.stage(p.text, p.mapText) : undefined;
      let changes: string[] | undefined;
      try {
        changes = await this.runtimeApply(live, p);
        await this.retryDrained();
      } catch (err) {
        this.o.logger.warn({ err: errorMessage(err) }, `runtime API update failed, reloading instead: ${errorMessage(err)}`);
      }
      if (changes !== undefined) {
        this.stats.runtimeApplies += 1;
        this.live = p;
        const ops = changes.length;
        this.o.logger.info({ ops, changes, config: this.o.configFile, waitedMs: this.batchAge, renderMs: this.stats.lastRenderMs, ms: Math.round(performance.now() - started) }, `HAProxy updated through the runtime API, no reload (${ops} change${ops === 1 ? '' : 's'}: ${summarize(changes)})`);
        await this.write(p, staged);
        return;
      }
      await staged?.discard();
    }
    // A reload (or file mode). A port left out earlier may be free again: a reload is coming anyway.
    if (guard && (await guard.review(full, this.bound, true))) {
      model = guard.filter(full);
      p = this.prepare(model, false);
    }
    // Declare a fresh pool of spare slots.
    if (this.o.mode !== 'file') {
      const fresh = planSlots(slotHosts(model), this.plan, this.o.spareBackends ?? 0, true);
      if (this.hostMap && fresh.declared !== p.plan.declared) p = this.prepare(model, true);
    }
    await this.write(p);
    if (this.o.mode === 'file') {
      this.live = p;
      return;
    }
    const reasons = reloadReasons(live, p, this.o.renderer.templatePath !== undefined);
    this.live = undefined;
    try {
      await this.reload(reasons);
    } catch (err) {
      if (guard && guard.fromReloadFailure(model, errorMessage(err)) > 0) throw new BindRetry();
      throw err;
    }
    this.bound = boundPorts(p.text);
    // The new worker has fresh servers and slots: none in maintenance, no stream of a host that left.
    this.draining.clear();
    this.retired.clear();
    this.plan = releaseSlots(p.plan, new Set(p.plan.vacated?.values() ?? []));
    this.live = p;
  }

  /** Writes the checked config and the host map; remembers the slot plan. */
  /**
   * Writes `p`'s config and map: temp files, `haproxy -c`, renames (or only the renames of files
   * `stage()` already checked); the temp files never outlive it.
   */
  private async write(p: Prepared, staged?: Staged): Promise<void> {
    const files = staged ?? (await this.stage(p.text, p.mapText));
    try {
      await files.commit();
    } finally {
      await files.discard();
    }
    this.plan = p.plan;
    this.lastText = `${p.text}\0${p.mapText}`;
  }

  /**
   * Temp files beside the targets and `haproxy -c` on the temp config (pointed at the temp map, so the
   * check sees the map it will run with and the old files stay intact if it fails). Throws with
   * HAProxy's words if it is rejected (the temp files removed). `commit` renames the map, then the
   * config, over the old ones (atomic); `discard` removes what is left.
   */
  private async stage(text: string, mapText: string): Promise<Staged> {
    const file = this.o.configFile;
    const hostMap = this.hostMap;
    this.tmpCounter += 1;
    const tmp = join(dirname(file), `.${basename(file)}.glue-${process.pid}-${this.tmpCounter}.tmp`);
    const tmpMap = hostMap ? join(dirname(hostMap), `.${basename(hostMap)}.glue-${process.pid}-${this.tmpCounter}.tmp`) : '';
    const discard = async (): Promise<void> => {
      await rm(tmp, { force: true });
      if (tmpMap) await rm(tmpMap, { force: true });
    };
    const checked = hostMap ? text.split(hostMap).join(tmpMap) : text;
    try {
      if (hostMap) await writeFile(tmpMap, mapText, { mode: 0o644 });
      await writeFile(tmp, checked, { mode: 0o644 });
      const check = await checkConfig(this.o.haproxyBin, tmp, this.o.checkTimeoutMs);
      this.stats.lastCheckMs = check.durationMs;
      if (!check.ok) {
        const output = hostMap ? check.output.split(tmpMap).join(hostMap) : check.output;
        throw new GlueError('HANDLER_FAILED', `haproxy -c rejected the new config, HAProxy keeps running on the last good one (${file}):\n${output.split(tmp).join(file)}`, { handler: this.o.handlerName, file });
      }
    } catch (err) {
      await discard();
      throw err;
    }
    const commit = async (): Promise<void> => {
      if (checked !== text) await writeFile(tmp, text, { mode: 0o644 });
      if (hostMap) await rename(tmpMap, hostMap);
      await rename(tmp, file);
    };
    return { commit, discard };
  }

  private async reload(reasons: readonly string[]): Promise<void> {
    const started = performance.now();
    if (this.o.mode === 'managed') {
      if (!this.managed) throw new Error('managed mode without a managed HAProxy');
      await this.managed.reload();
    } else {
      const before = this.o.runtimeSocket ? await workerPid(this.o.runtimeSocket).catch(() => undefined) : undefined;
      const [cmd, ...args] = this.o.reloadCommand;
      if (!cmd) throw new GlueError('HANDLER_FAILED', 'external mode needs a reload command (param reload-command)', { handler: this.o.handlerName });
      const r = await execa(cmd, args, { reject: false, timeout: this.o.reloadTimeoutMs, stdin: 'ignore', all: true });
      if (r.failed) {
        throw new GlueError('HANDLER_FAILED', `reload command ${JSON.stringify(this.o.reloadCommand.join(' '))} failed (${r.timedOut ? 'timed out' : `exit code ${r.exitCode}`}): ${String(r.all ?? '').trim()}`, { handler: this.o.handlerName });
      }
      if (this.o.runtimeSocket && before !== undefined) {
        const deadline = Date.now() + this.o.reloadTimeoutMs;
        for (;;) {
          const now = await workerPid(this.o.runtimeSocket).catch(() => undefined);
          if (now !== undefined && now !== before) break;
          if (Date.now() > deadline) {
            this.o.logger.warn({ socket: this.o.runtimeSocket, pid: before }, `no new HAProxy worker answered on ${this.o.runtimeSocket} after the reload command; going on`);
            break;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
    this.stats.reloads += 1;
    this.lastReloadAt = Date.now();
    this.o.logger.info({ config: this.o.configFile, mode: this.o.mode, reasons, waitedMs: this.batchAge, renderMs: this.stats.lastRenderMs, checkMs: this.stats.lastCheckMs, reloadMs: Math.round(performance.now() - started) }, `HAProxy reloaded with ${this.o.configFile} (${summarize(reasons)})`);
  }

  /**
   * Applies server membership, address and weight changes, and hosts joining or leaving their slots,
   * without a reload (planRuntimeOps says which commands, in which order). Returns the changes made.
   */
  private async runtimeApply(beforeState: Prepared, afterState: Prepared): Promise<string[]> {
    const plan = planRuntimeOps({ before: beforeState, after: afterState, hostMap: this.hostMap, draining: new Set(this.draining.keys()), retired: this.retired });
    await this.execute(plan.commands);
    for (const id of plan.restored) {
      this.draining.delete(id);
      this.retired.delete(id);
    }
    const grace = this.o.deleteGraceMs ?? 30_000;
    for (const r of plan.removals) {
      const id = `${r.backend}/${r.server}`;
      this.retired.delete(id);
      // In maintenance it takes no new traffic; it is deleted once the grace period is over.
      this.draining.set(id, { ...r, notBefore: Date.now() + grace });
      if (grace <= 0) await this.tryDelete(r.backend, r.server);
    }
    return plan.changes;
  }

  /** Sends the commands in order; the first refused one throws. */
  private async execute(commands: readonly RuntimeCommand[]): Promise<void> {
    for (const c of commands) await runtimeCommand(this.o.runtimeSocket, c.command, c.ok);
  }

  private async tryDelete(backend: string, server: string): Promise<void> {
    const id = `${backend}/${server}`;
    try {
      await runtimeCommand(this.o.runtimeSocket, `del server ${id}`, /Server deleted/);
      this.draining.delete(id);
    } catch (err) {
      // HAProxy refuses deletion while connections remain: try again later.
      this.o.logger.debug({ server: id, err: errorMessage(err) }, `server ${id} drained but not yet deletable; will retry`);
    }
  }

  private async retryDrained(): Promise<void> {
    if (!this.o.runtimeSocket) return;
    const now = Date.now();
    for (const { backend, server, notBefore } of [...this.draining.values()]) if (notBefore <= now) await this.tryDelete(backend, server);
    if (this.draining.size > 0 && !this.drainTimer && !this.stopped) {
      // Nothing else may happen for a while: come back by ourselves to delete them.
      const next = Math.min(...[...this.draining.values()].map((d) => d.notBefore));
      this.drainTimer = setTimeout(() => {
        this.drainTimer = undefined;
        void this.request(false);
      }, Math.max(2000, next - Date.now()));
      this.drainTimer.unref();
    }
  }
}
