/**
 * Apply = render -> skip if unchanged -> temp file beside the target -> `haproxy -c` -> atomic rename
 * -> reload (or, when only servers changed, the runtime API). The Applier decides which; when applies
 * run is the ApplyScheduler's, the files are StagedFiles', how HAProxy reloads is the Reloader's and
 * which runtime commands go out is planRuntimeOps'.
 */
import { readFile } from 'node:fs/promises';
import { errorMessage, GlueError, type Logger } from '@glue/core';
import { ApplyScheduler } from './apply-scheduler.js';
import { runtimeCommand } from './haproxy-io.js';
import type { ManagedHaproxy } from './managed.js';
import { type BalancerModel, structureKey, tlsMapFileText } from './model.js';
import { createReloader, type Mode, type Reloader } from './reloader.js';
import {
  planRetire,
  planRuntimeOps,
  reloadReasons,
  retireCommands,
  type RuntimeCommand,
  summarize,
} from './runtime-plan.js';
import {
  type HostSlot,
  hostMapText,
  placeModel,
  planSlots,
  releaseSlots,
  sameAssignment,
  type SlotPlan,
  slotHosts,
  slotName,
} from './slots.js';
import { type Staged, StagedFiles } from './staged-files.js';
import { boundPorts, TcpGuard } from './tcp-guard.js';
import { builtInInputsKey, type RenderSettings, Renderer, templateContext } from './template.js';

export type { Mode } from './reloader.js';

/** A reload failed on TCP ports that cannot be bound; those services are now left out: apply again. */
class BindRetry extends Error {}

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
  /**
   * TLS map file (`<host> <flags>` for the HTTPS hosts; '' or absent without an HTTPS frontend): the
   * runtime API adds, changes and deletes its entries, so a host joining HTTPS needs no reload.
   */
  tlsMap?: string;
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
  /** An existing config file or host map that Glue did not write is moved aside instead of refused (file-claim.ts). */
  takeover?: boolean;
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
  /** Slot planning and structure of the last apply (and the render, for a user template). */
  lastPrepareMs: number;
  /** How the last apply ended (undefined before the first): ok, or the reason it failed. */
  lastApply: { ok: true; at: number } | { ok: false; at: number; error: string } | undefined;
}

/** What the files of `p` hold: two equal keys write equal files. */
const filesKey = (p: Prepared): string => `${p.fingerprint}\0${p.mapText}\0${p.tlsMapText}`;

const withoutServers = (m: BalancerModel): BalancerModel => ({
  ...m,
  http: m.http.map((b) => ({ ...b, servers: [] })),
  tcp: m.tcp.map((s) => ({ ...s, servers: [] })),
});

/** A model rendered with its slot placement: everything an apply compares and writes. */
interface Prepared {
  /** Host-only backends renamed to their slots. */
  model: BalancerModel;
  plan: SlotPlan;
  /** The config text; the built-in template renders it on first use (a runtime-API apply does not need it). */
  readonly text: string;
  /** The host map file's content ('' without a host map). */
  mapText: string;
  /** The TLS map file's content ('' without one). */
  tlsMapText: string;
  /** What needs a reload when it changes. */
  structure: string;
  /** Equal for two states that give the same files (the built-in template's: its inputs; a user template's: its text). */
  fingerprint: string;
}

export class Applier {
  readonly stats: ApplierStats = {
    applies: 0,
    skipped: 0,
    reloads: 0,
    runtimeApplies: 0,
    failures: 0,
    lastCheckMs: 0,
    lastRenderMs: 0,
    lastPrepareMs: 0,
    lastApply: undefined,
  };
  private readonly reloader: Reloader;
  private readonly files: StagedFiles;
  private readonly scheduler: ApplyScheduler;
  /** What HAProxy runs now (undefined: unknown, the next apply reloads). */
  private live: Prepared | undefined;
  /** The slot plan last written: hosts keep their slots across renders, reloads and failures. */
  private plan: SlotPlan | undefined;
  private lastText: string | undefined;
  /** The newest runtime-applied files not yet on disk, and the background write putting them there. */
  private pendingWrite: Prepared | undefined;
  private writing: Promise<void> | undefined;
  /** Servers set to maintenance whose `del server` HAProxy refused (connections still open). */
  private readonly draining = new Map<string, { backend: string; server: string; notBefore: number }>();
  /** Servers of `live` put in maintenance with their sessions shut down because their container died. */
  private readonly retired = new Set<string>();
  private lastReloadAt = 0;
  private drainTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** TCP services whose port cannot be bound: left out (the other routes apply) until it can. */
  private readonly tcpGuard: TcpGuard | undefined;
  /** Ports the config HAProxy runs binds (undefined: not known yet). */
  private bound: Set<number> | undefined;
  private redispatchChecked = false;
  /** A reload was asked for (reloadSoon) and has not started yet. */
  private forceReload = false;

  constructor(private readonly o: ApplierOptions) {
    this.reloader = createReloader({
      mode: o.mode,
      haproxyBin: o.haproxyBin,
      configFile: o.configFile,
      reloadCommand: o.reloadCommand,
      runtimeSocket: o.runtimeSocket,
      masterSocket: o.masterSocket,
      reloadTimeoutMs: o.reloadTimeoutMs,
      handlerName: o.handlerName,
      logger: o.logger,
    });
    this.files = new StagedFiles({
      configFile: o.configFile,
      hostMap: o.hostMap ?? '',
      tlsMap: o.tlsMap ?? '',
      haproxyBin: o.haproxyBin,
      checkTimeoutMs: o.checkTimeoutMs,
      handlerName: o.handlerName,
      logger: o.logger,
    });
    this.scheduler = new ApplyScheduler({
      debounceMs: o.debounceMs,
      maxDelayMs: o.maxDelayMs,
      logger: o.logger,
      apply: () => this.apply(),
      holdMs: () => this.reloadHold(),
      // Servers of dead containers do not wait for a held reload.
      whileHeld: () => this.retireDead(),
    });
    if (this.reloader.reloads) {
      this.tcpGuard = new TcpGuard({
        address: o.settings.tcpAddress,
        logger: o.logger,
        onRetry: () => void this.request(false),
        ...(o.bindProbe !== undefined ? { probe: o.bindProbe } : {}),
        ...(o.tcpRetryMs !== undefined ? { minRetryMs: o.tcpRetryMs } : {}),
      });
    }
  }

  /** `managed` mode: the HAProxy Glue runs. */
  get managed(): ManagedHaproxy | undefined {
    return this.reloader.managed;
  }

  /**
   * Managed mode: starts HAProxy. Glue's core starts handlers before its first container listing, so
   * the model is still empty here: when the config file of an earlier run is on disk and still passes
   * `haproxy -c`, HAProxy starts on it (a HAProxy left running by that run hands over without a gap in
   * routing) and the first apply reloads it with the current containers; otherwise on the empty config.
   */
  async start(): Promise<void> {
    await this.files.sweepTemps();
    await this.files.claim(this.o.takeover === true);
    const managed = this.reloader.managed;
    if (!managed) return;
    const previous = await this.files.lastGood(this.o.runtimeSocket);
    if (previous !== undefined) {
      try {
        await managed.start();
        this.bound = boundPorts(previous);
        this.o.logger.info(
          { config: this.o.configFile },
          `HAProxy started on the last good config ${this.o.configFile}; the first apply reloads it with the current containers`,
        );
        return;
      } catch (err) {
        await managed.stop();
        this.o.logger.warn(
          { config: this.o.configFile, err: errorMessage(err) },
          `HAProxy did not start on the last good config ${this.o.configFile}, starting it with an empty one: ${errorMessage(err)}`,
        );
      }
    }
    const p = this.prepare(this.o.compute(), true);
    await this.write(p);
    await managed.start();
    this.bound = boundPorts(p.text);
    this.live = p;
  }

  /** Whether HAProxy answers on the runtime socket (the certificates are loaded through it). */
  get runtimeReady(): boolean {
    return this.o.runtimeSocket !== '' && this.reloader.runtimeReady;
  }

  /**
   * Files HAProxy reads changed behind the Applier (certificates): the next apply that starts its
   * decision after this call reloads (an apply running now may still finish on the runtime API).
   */
  reloadSoon(): Promise<void> {
    this.forceReload = true;
    return this.request(false);
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
    return this.scheduler.request(external);
  }

  /** Resolves once no apply is running or waiting (tests, embedders). */
  async settled(): Promise<void> {
    do {
      await this.scheduler.settled();
      await this.writing;
    } while (this.writing !== undefined);
  }

  /** What HAProxy runs now, counted: backends (HTTP and TCP), servers, and servers out of rotation. */
  liveCounts(): { backends: number; servers: number; retired: number; draining: number } {
    const m = this.live?.model;
    const backends = (m?.http.length ?? 0) + (m?.tcp.length ?? 0);
    const servers =
      (m?.http ?? []).reduce((n, b) => n + b.servers.length, 0) +
      (m?.tcp ?? []).reduce((n, b) => n + b.servers.length, 0);
    return { backends, servers, retired: this.retired.size, draining: this.draining.size };
  }

  /** How long a structural apply must still wait (min-reload-interval); 0 for a servers-only change. */
  private reloadHold(): number {
    if (this.o.minReloadIntervalMs <= 0 || !this.reloader.reloads || !this.live) return 0;
    const wait = this.lastReloadAt + this.o.minReloadIntervalMs - Date.now();
    if (wait <= 0) return 0;
    try {
      return this.prepare(this.desired(), false).structure === this.live.structure ? 0 : wait;
    } catch {
      return 0;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.drainTimer);
    this.tcpGuard?.stop();
    await this.scheduler.stop();
    await this.writing;
    await this.reloader.stop();
  }

  /**
   * Places host-only routes in slots (keeping every host's slot; `refresh` declares a fresh pool of
   * spares, for a reload) and renders.
   */
  private prepare(model: BalancerModel, refresh: boolean): Prepared {
    const started = performance.now();
    const hostMap = this.hostMap;
    const settings = { ...this.o.settings, hostMap };
    try {
      const plan = hostMap
        ? planSlots(slotHosts(model), this.plan, this.o.spareBackends ?? 0, refresh)
        : { declared: 0, assignment: new Map<string, number>() };
      const placed = hostMap ? placeModel(model, plan) : { model, slots: [] as HostSlot[] };
      // The structure alone (min-reload-interval holds) needs no render of the built-in template.
      const builtIn = this.o.renderer.templatePath === undefined;
      const render = (): string => {
        const t0 = performance.now();
        const out = this.o.renderer.render(templateContext(model, settings, placed));
        this.stats.lastRenderMs = Math.round(performance.now() - t0);
        return out;
      };
      let text = builtIn ? undefined : render();
      // The built-in template's structure is the model's (host-only routes: only how many slots it
      // declares); a user template may put anything anywhere, so its structure is what it renders
      // without servers.
      let structure: string;
      if (builtIn) {
        const key = hostMap
          ? structureKey({ http: placed.model.http.filter((b) => b.prefix !== ''), tcp: placed.model.tcp })
          : structureKey(placed.model);
        structure = `${key}\0${plan.declared}`;
      } else {
        const bare = withoutServers(model);
        structure = this.o.renderer.render(
          templateContext(bare, settings, hostMap ? placeModel(bare, plan) : undefined),
        );
      }
      this.stats.lastPrepareMs = Math.round(performance.now() - started);
      if (text !== undefined && !this.redispatchChecked) {
        this.redispatchChecked = true;
        if (!/^\s*option\s+redispatch\b/m.test(text)) {
          this.o.logger.warn(
            { template: this.o.renderer.templatePath },
            `the template ${this.o.renderer.templatePath ?? ''} renders no "option redispatch": a request caught by a container that died is retried against its address, which Docker may have given to another host's container (the built-in template sets "retries 3" and "option redispatch 1")`,
          );
        }
      }
      const mapText = hostMap ? hostMapText(plan) : '';
      const tlsMapText = this.o.tlsMap ? tlsMapFileText(model.tls ?? []) : '';
      // The built-in template's text is a function of the placed model and the slots declared.
      const fingerprint = text ?? builtInInputsKey(placed, plan.declared);
      return {
        model: placed.model,
        plan,
        get text(): string {
          return (text ??= render());
        },
        mapText,
        tlsMapText,
        structure,
        fingerprint,
      };
    } catch (err) {
      throw new GlueError(
        'BACKEND_REJECTED',
        `cannot render the HAProxy template ${this.o.renderer.templatePath ?? '(built-in)'}: ${errorMessage(err)}; HAProxy keeps the old config`,
        { handler: this.o.handlerName, cause: err },
      );
    }
  }

  private async apply(): Promise<void> {
    this.stats.applies += 1;
    try {
      await this.applyInner();
      this.stats.lastApply = { ok: true, at: Date.now() };
    } catch (err) {
      this.stats.failures += 1;
      this.stats.lastApply = { ok: false, at: Date.now(), error: errorMessage(err) };
      throw err;
    }
  }

  private async applyInner(): Promise<void> {
    await this.files.sweepTemps();
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
    if (!this.live || !this.o.runtimeSocket || !this.reloader.reloads) return;
    const ids = planRetire(this.live.model, this.o.alive, this.retired);
    for (const id of ids) {
      try {
        await this.execute(retireCommands(id));
        this.retired.add(id);
      } catch (err) {
        this.o.logger.warn(
          { server: id, err: errorMessage(err) },
          `could not shut down the sessions of ${id}, whose container stopped: ${errorMessage(err)}`,
        );
      }
    }
    if (ids.length > 0)
      this.o.logger.info({ servers: ids }, `container stopped: ${summarize(ids)} in maintenance, sessions shut down`);
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
      guard.forget(full);
      await guard.review(full, this.bound, false);
      model = guard.filter(full);
    }
    let p = this.prepare(model, !this.reloader.reloads);
    if (filesKey(p) === this.lastText && this.live !== undefined && !this.forceReload) {
      this.stats.skipped += 1;
      await this.retryDrained();
      return;
    }
    const live = this.live;
    // Map entries can only change at run time when the running config reads the map.
    const builtIn = this.o.renderer.templatePath === undefined;
    const mapOk =
      (sameAssignment(live?.plan ?? p.plan, p.plan) ||
        (this.hostMap !== '' &&
          // The built-in template routes through the map whenever there is one and a frontend.
          (builtIn
            ? this.o.settings.httpBind !== '' || this.o.settings.https !== undefined
            : p.text.includes(this.hostMap)))) &&
      (live?.tlsMapText === p.tlsMapText ||
        // The built-in template reads the TLS map whenever there is an HTTPS frontend.
        (this.o.tlsMap !== undefined && this.o.tlsMap !== '' && (builtIn || p.text.includes(this.o.tlsMap))));
    if (
      live &&
      !this.forceReload &&
      live.structure === p.structure &&
      mapOk &&
      this.o.fastPath &&
      this.o.runtimeSocket &&
      this.reloader.runtimeReady
    ) {
      // Only servers and host map entries changed. A user template may print anything on a server
      // line, so its file is checked first and a config HAProxy would refuse never reaches it. The
      // built-in template's server lines hold only values that passed the label grammar, in a
      // structure HAProxy already accepted, so the runtime API goes first (routable in milliseconds;
      // `haproxy -c` alone takes 30-150 ms on a small machine) and the file is checked after. Either
      // way the checked files are renamed last, so a restart or the next reload agrees with HAProxy.
      const staged = this.o.renderer.templatePath !== undefined ? await this.stage(p) : undefined;
      let changes: string[] | undefined;
      try {
        changes = await this.runtimeApply(live, p);
        await this.retryDrained();
      } catch (err) {
        this.o.logger.warn(
          { err: errorMessage(err) },
          `runtime API update failed, reloading instead: ${errorMessage(err)}`,
        );
      }
      if (changes !== undefined) {
        this.stats.runtimeApplies += 1;
        this.live = p;
        const ops = changes.length;
        this.o.logger.info(
          {
            ops,
            changes,
            config: this.o.configFile,
            waitedMs: this.scheduler.batchAge,
            prepareMs: this.stats.lastPrepareMs,
            ms: Math.round(performance.now() - started),
          },
          `HAProxy updated through the runtime API, no reload (${ops} change${ops === 1 ? '' : 's'}: ${summarize(changes)})`,
        );
        // A user template's files were checked before HAProxy saw the change: written now. The built-in
        // template's are checked and written in the background (a `haproxy -c` of a big config takes
        // hundreds of ms: the next change must not wait for it).
        if (staged) await this.write(p, staged);
        else this.writeLater(p);
        return;
      }
      await staged?.discard();
    }
    // A reload (or file mode). A port left out earlier may be free again: a reload is coming anyway.
    if (guard && (await guard.review(full, this.bound, true))) {
      model = guard.filter(full);
      p = this.prepare(model, false);
    }
    if (!this.reloader.reloads) {
      this.forceReload = false;
      await this.write(p);
      this.live = p;
      return;
    }
    // Declare a fresh pool of spare slots.
    const fresh = planSlots(slotHosts(model), this.plan, this.o.spareBackends ?? 0, true);
    if (this.hostMap && fresh.declared !== p.plan.declared) p = this.prepare(model, true);
    await this.write(p);
    const forced = this.forceReload;
    const reasons = forced
      ? ['files HAProxy reads changed (certificates)']
      : reloadReasons(live, p, this.o.renderer.templatePath !== undefined);
    this.live = undefined;
    // From here on the reload reads every file written so far.
    this.forceReload = false;
    try {
      await this.reload(reasons);
    } catch (err) {
      if (forced) this.forceReload = true;
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

  /** `p`'s config and map as checked temp files (StagedFiles.stage). */
  private async stage(p: Prepared): Promise<Staged> {
    try {
      return await this.files.stage(p.text, p.mapText, p.tlsMapText);
    } finally {
      this.stats.lastCheckMs = this.files.lastCheckMs;
    }
  }

  /**
   * Writes `p`'s config and map (checked now, or already by `stage`); remembers the slot plan and text.
   * A background write still waiting is superseded (this one is newer); one running is waited for, so
   * an older file can never be renamed over this one.
   */
  private async write(p: Prepared, staged?: Staged): Promise<void> {
    this.pendingWrite = undefined;
    await this.writing;
    await this.files.write(p.text, p.mapText, p.tlsMapText, staged ?? (await this.stage(p)));
    this.plan = p.plan;
    this.lastText = filesKey(p);
  }

  /**
   * After a runtime-API apply: HAProxy already runs `p`; its files are checked and renamed in the
   * background, newest first (a write waiting is replaced by a newer one, never queued behind it).
   * A failed write is logged and the next apply writes again.
   */
  private writeLater(p: Prepared): void {
    this.plan = p.plan;
    this.lastText = filesKey(p);
    this.pendingWrite = p;
    this.writing ??= this.drainWrites().finally(() => (this.writing = undefined));
  }

  private async drainWrites(): Promise<void> {
    for (let p = this.pendingWrite; p !== undefined; p = this.pendingWrite) {
      this.pendingWrite = undefined;
      try {
        await this.files.write(p.text, p.mapText, p.tlsMapText, await this.stage(p));
      } catch (err) {
        this.lastText = undefined;
        this.o.logger.error(
          { config: this.o.configFile, err: errorMessage(err) },
          `HAProxy runs the change (runtime API) but ${this.o.configFile} was not written: ${errorMessage(err)}; the next apply writes it again`,
        );
      }
    }
  }

  private async reload(reasons: readonly string[]): Promise<void> {
    const started = performance.now();
    await this.reloader.reload();
    this.stats.reloads += 1;
    this.lastReloadAt = Date.now();
    this.o.logger.info(
      {
        config: this.o.configFile,
        mode: this.o.mode,
        reasons,
        waitedMs: this.scheduler.batchAge,
        renderMs: this.stats.lastRenderMs,
        checkMs: this.stats.lastCheckMs,
        reloadMs: Math.round(performance.now() - started),
      },
      `HAProxy reloaded with ${this.o.configFile} (${summarize(reasons)})`,
    );
  }

  /**
   * Applies server membership, address and weight changes, and hosts joining or leaving their slots,
   * without a reload (planRuntimeOps says which commands, in which order). Returns the changes made.
   */
  private async runtimeApply(beforeState: Prepared, afterState: Prepared): Promise<string[]> {
    const plan = planRuntimeOps({
      before: beforeState,
      after: afterState,
      hostMap: this.hostMap,
      tlsMap: this.o.tlsMap ?? '',
      draining: new Set(this.draining.keys()),
      retired: this.retired,
    });
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
      this.o.logger.debug(
        { server: id, err: errorMessage(err) },
        `server ${id} drained but not yet deletable; will retry`,
      );
    }
  }

  private async retryDrained(): Promise<void> {
    if (!this.o.runtimeSocket) return;
    const now = Date.now();
    for (const { backend, server, notBefore } of [...this.draining.values()])
      if (notBefore <= now) await this.tryDelete(backend, server);
    if (this.draining.size > 0 && !this.drainTimer && !this.stopped) {
      // Nothing else may happen for a while: come back by ourselves to delete them.
      const next = Math.min(...[...this.draining.values()].map((d) => d.notBefore));
      this.drainTimer = setTimeout(
        () => {
          this.drainTimer = undefined;
          void this.request(false);
        },
        Math.max(2000, next - Date.now()),
      );
      this.drainTimer.unref();
    }
  }
}
