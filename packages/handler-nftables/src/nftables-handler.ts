import {
  type Agent,
  BaseHandler,
  type CommandRunner,
  type ContainerInspectInfo,
  describeLabelProblem,
  errorMessage,
  execaRunner,
  GlueError,
  type GlueErrorOptions,
  type HandlerClaim,
  type HandlerContext,
  type IniDocument,
  type LabelProblem,
  ParamError,
  SECONDS_BUCKETS,
  Serial,
  StoppingContainers,
} from '@glue/core';
import { Kernel } from './kernel.js';
import {
  buildServices,
  dockerCandidates,
  type Flowpoint,
  flowKey,
  flowpoints,
  type L4Model,
  type SkipNote,
} from './model.js';
import { type NftParams, parseParams } from './params.js';
import { renderDelete, renderFull, renderPatch, type TableSpec, tableSpec } from './ruleset.js';

export interface NftablesHandlerOptions {
  /** Runs nft and conntrack. Default: execa, argument arrays, no shell. */
  runner?: CommandRunner;
}

/** Reasons a container is left out that are its state, not a mistake: logged at debug. */
const ROUTINE = /^(not running|paused|health check says|stopping \(sent signal)/;

/**
 * UDP (and, when chosen, TCP) load balancing in the kernel: containers labelled
 * `glue_udp_<port>_port=<listen port>` (`glue_tcp_...` with `protocols=udp,tcp`) become services of one
 * nftables table of Glue's own, changed only by whole transactions (`nft -f -`). A flow's
 * first packet picks an endpoint by weight (`numgen random`), `dnat` sends it there, conntrack keeps
 * the rest of the flow on it. When an endpoint goes, its UDP conntrack entries are deleted, so clients
 * that reuse a source port reach a live endpoint instead of the dead one.
 *
 * Every event (and `none`) recomputes the table from Glue's view of the containers (running, not
 * paused, healthy, not being stopped) and sends only what changed (one transaction still); nothing
 * when nothing did. The first run, and the one after a failed transaction, replace the whole table. At start-up the
 * table a previous run left is read back: it is kept until the first run replaces it, so traffic
 * keeps flowing across a restart, and its endpoints that are gone lose their flows then. On stop
 * the rules stay unless `remove-on-stop`.
 */
export class NftablesHandler extends BaseHandler {
  readonly settings: NftParams;
  /** One change to the table at a time, in order. */
  readonly serial = true;
  readonly labelPrefixes: readonly string[];
  readonly claims: readonly HandlerClaim[];
  private readonly kernel: Kernel;
  private readonly tag: Pick<GlueErrorOptions, 'handler' | 'file'>;
  private readonly stopping = new StoppingContainers();
  /** What the kernel has, when this handler wrote it (undefined: the next run replaces the whole table). */
  private applied: TableSpec | undefined;
  /** Endpoints the table sends flows to: read back at start, then as applied. */
  private live: Flowpoint[] = [];
  private model: L4Model = { services: [] };
  private lastError: string | undefined;
  /** Container id -> what was last logged about it (logged again only when it changes). */
  private readonly told = new Map<string, string>();
  private unobserve: () => void = () => undefined;
  /** Runs and periodic checks, one at a time. */
  private readonly work = new Serial();
  private readonly metrics = {
    transactions: this.agent.metrics.counter({
      name: 'glue_nftables_transactions_total',
      help: 'Transactions sent to nft -f, by kind (full: the whole table; patch: what changed) and result',
      labelNames: ['handler', 'kind', 'result'],
    }),
    seconds: this.agent.metrics.histogram({
      name: 'glue_nftables_transaction_seconds',
      help: 'How long one nft -f transaction took',
      labelNames: ['handler'],
      buckets: SECONDS_BUCKETS,
    }),
    forgotten: this.agent.metrics.counter({
      name: 'glue_nftables_conntrack_deleted_total',
      help: 'UDP conntrack entries deleted because their endpoint went',
      labelNames: ['handler'],
    }),
    drift: this.agent.metrics.counter({
      name: 'glue_nftables_drift_repairs_total',
      help: "Times the table was found changed or gone behind Glue's back and written whole again",
      labelNames: ['handler'],
    }),
  };

  constructor(agent: Agent, iniFile: string, ini: IniDocument, options: NftablesHandlerOptions = {}) {
    super(agent, iniFile, ini);
    const { params, problems } = parseParams(this.params);
    if (problems.length > 0) throw ParamError.of(this.name, problems);
    this.settings = params;
    this.tag = { handler: this.name, file: this.iniFile };
    this.kernel = new Kernel(options.runner ?? execaRunner, params, this.tag);
    this.labelPrefixes = params.protocols.map((p) => `glue_${p}_`);
    this.claims = params.protocols.map((p) => ({ what: `glue_${p}_<port>_port labels`, key: 'protocols' }));
  }

  /** Reads the table a previous run left: refuses one Glue did not make (unless takeover). */
  async start(): Promise<void> {
    const { family, table, takeover } = this.settings;
    const state = await this.kernel.read(this.agent.signal);
    if (state && !state.owned && !takeover)
      throw new GlueError(
        'FOREIGN_FILE',
        `nftables table ${family} ${table} exists and was not made by Glue: refusing to replace it (choose another table param, or set takeover=yes to replace it)`,
        this.tag,
      );
    if (state) {
      this.live = state.endpoints;
      this.logger.info(
        { table: `${family} ${table}`, services: state.services, endpoints: state.endpoints.length },
        `found table ${family} ${table} with ${state.services} service(s): kept until the first run reconciles it`,
      );
    }
    this.observe();
    // Someone may flush the ruleset or delete the table between events: look now and then.
    if (this.agent.mode !== 'once') this.work.every(this.settings.reconcileIntervalMs, () => this.driftRound());
  }

  async stop(): Promise<void> {
    this.unobserve();
    await this.work.stop();
    if (!this.settings.removeOnStop) return;
    try {
      await this.kernel.apply(renderDelete(this.settings), AbortSignal.timeout(this.settings.timeoutMs));
      this.applied = undefined;
      this.logger.info(`removed table ${this.settings.family} ${this.settings.table} (remove-on-stop)`);
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, `could not remove the table: ${errorMessage(err)}`);
    }
  }

  ready(): string | undefined {
    return this.lastError === undefined ? undefined : `the last nft transaction failed: ${this.lastError}`;
  }

  async handle(_event: string, _containerId: string, context?: HandlerContext): Promise<void> {
    if (context?.event) this.stopping.observe(context.event, context.container);
    await this.work.run(() => this.sync(context?.signal ?? this.agent.signal));
  }

  /**
   * The `reconcile-interval` round: the table read back; gone, foreign-looking or sending flows to
   * other endpoints than the last transaction wrote, it is written whole again (and after a failed
   * transaction, the run is tried again). Never throws.
   */
  checkDrift(): Promise<void> {
    return this.work.run(() => this.driftRound());
  }

  private async driftRound(): Promise<void> {
    if (this.agent.signal.aborted) return;
    try {
      const signal = AbortSignal.any([this.agent.signal, AbortSignal.timeout(this.settings.timeoutMs)]);
      // Not written yet: the first run will. Its last transaction failed: try again now.
      if (this.applied === undefined) {
        if (this.lastError !== undefined) await this.sync(signal);
        return;
      }
      const state = await this.kernel.read(signal);
      const want = new Set(this.live.map(flowKey));
      const have = new Set((state?.endpoints ?? []).map(flowKey));
      const same =
        state !== undefined &&
        state.owned &&
        state.services === this.model.services.length &&
        want.size === have.size &&
        [...want].every((k) => have.has(k));
      if (same) return;
      this.logger.warn(
        { table: `${this.settings.family} ${this.settings.table}`, found: state ? 'changed' : 'gone' },
        `table ${this.settings.family} ${this.settings.table} was ${state ? 'changed' : 'deleted'} behind Glue's back: writing it whole again`,
      );
      this.metrics.drift.inc({ handler: this.name });
      this.applied = undefined;
      await this.sync(signal);
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, `periodic table check failed: ${errorMessage(err)}`);
    }
  }

  /** `glue check`: this handler's labels by its grammar (ports, weights, the listen port range). */
  checkContainer(info: ContainerInspectInfo): LabelProblem[] {
    const { notes } = dockerCandidates([info], this.candidateOptions());
    return notes.flatMap((n) => n.problems);
  }

  /** The table as the containers say it should be: written in one transaction when it changed. */
  async sync(signal: AbortSignal): Promise<void> {
    const { candidates, notes } = dockerCandidates(this.agent.containers(), this.candidateOptions());
    this.report(notes);
    const model = buildServices(candidates);
    const spec = tableSpec(model, this.settings);
    // The whole table the first time (a restart reconciles what the last run left) and after a
    // failure (what the kernel has is then not known); afterwards only what changed.
    const kind = this.applied === undefined ? 'full' : 'patch';
    const script =
      this.applied === undefined ? renderFull(spec, this.settings) : renderPatch(this.applied, spec, this.settings);
    if (script === undefined) return;
    try {
      await this.transaction(kind, script, signal);
    } catch (err) {
      this.applied = undefined;
      // A patch the kernel refuses (the table changed behind Glue's back): the whole table, at once.
      if (kind !== 'patch') throw err;
      this.logger.warn({ err: errorMessage(err) }, `patch refused, writing the whole table: ${errorMessage(err)}`);
      await this.transaction('full', renderFull(spec, this.settings), signal);
    }
    this.lastError = undefined;
    this.applied = spec;
    const before = this.model;
    this.model = model;
    const now = flowpoints(model);
    const keep = new Set(now.map(flowKey));
    const gone = this.live.filter((f) => !keep.has(flowKey(f)));
    this.live = now;
    this.logChange(before, model);
    await this.forget(gone.filter((f) => f.protocol === 'udp'));
  }

  /** One `nft -f` transaction, timed and counted; a failure is kept for ready() and thrown. */
  private async transaction(kind: 'full' | 'patch', script: string, signal: AbortSignal): Promise<void> {
    const end = this.metrics.seconds.startTimer({ handler: this.name });
    try {
      await this.kernel.apply(script, signal);
    } catch (err) {
      this.lastError = errorMessage(err);
      this.metrics.transactions.inc({ handler: this.name, kind, result: 'failed' });
      throw err;
    } finally {
      end();
    }
    this.metrics.transactions.inc({ handler: this.name, kind, result: 'applied' });
  }

  /** Deletes the UDP flows of endpoints that went, after the rules no longer choose them. Never throws. */
  private async forget(gone: readonly Flowpoint[]): Promise<void> {
    for (const f of gone) {
      try {
        const n = await this.kernel.forget(f, AbortSignal.timeout(this.settings.timeoutMs));
        this.metrics.forgotten.inc({ handler: this.name }, n);
        if (n > 0)
          this.logger.info({ endpoint: flowKey(f), entries: n }, `deleted ${n} conntrack entries of ${flowKey(f)}`);
      } catch (err) {
        this.logger.warn(
          { endpoint: flowKey(f), err: errorMessage(err) },
          `could not delete the conntrack entries of ${flowKey(f)}: ${errorMessage(err)}`,
        );
      }
    }
  }

  private candidateOptions(): Parameters<typeof dockerCandidates>[1] {
    return {
      network: this.settings.network,
      protocols: this.settings.protocols,
      ports: this.settings.ports,
      outOfRotation: (id) => this.stopping.reason(id),
    };
  }

  /** Refused labels at warn, once per change; left-out containers at info (routine states at debug). */
  private report(notes: readonly SkipNote[]): void {
    const seen = new Set<string>();
    for (const n of notes) {
      seen.add(n.containerId);
      const said = JSON.stringify([n.problems, n.reason]);
      if (this.told.get(n.containerId) === said) continue;
      this.told.set(n.containerId, said);
      for (const p of n.problems)
        this.logger.warn(
          { container: n.containerName, label: p.label, value: p.value },
          `${describeLabelProblem(n.containerName, p)}: refused`,
        );
      if (n.reason)
        this.logger[ROUTINE.test(n.reason) ? 'debug' : 'info'](
          { container: n.containerName, reason: n.reason },
          `container ${n.containerName} left out: ${n.reason}`,
        );
    }
    for (const id of this.told.keys()) if (!seen.has(id)) this.told.delete(id);
  }

  private logChange(before: L4Model, after: L4Model): void {
    const names = (m: L4Model): Set<string> =>
      new Set(
        m.services.flatMap((s) =>
          s.endpoints.map((e) => `${s.protocol}/${s.port} -> ${e.name} ${e.address}:${e.port} w${e.weight}`),
        ),
      );
    const a = names(before);
    const b = names(after);
    const added = [...b].filter((x) => !a.has(x));
    const removed = [...a].filter((x) => !b.has(x));
    this.logger.info(
      { services: after.services.length, added, removed },
      `table ${this.settings.family} ${this.settings.table}: ${after.services.length} service(s), ${b.size} endpoint(s)`,
    );
  }

  private observe(): void {
    const services = this.agent.metrics.gauge({
      name: 'glue_nftables_services',
      help: 'Services in the table, as this handler last wrote it',
      labelNames: ['handler'],
    });
    const endpoints = this.agent.metrics.gauge({
      name: 'glue_nftables_endpoints',
      help: 'Endpoints (container and port) the table sends flows to',
      labelNames: ['handler'],
    });
    this.unobserve();
    const unregister = this.agent.metrics.collector(() => {
      services.set({ handler: this.name }, this.model.services.length);
      endpoints.set({ handler: this.name }, flowpoints(this.model).length);
    });
    this.unobserve = () => {
      unregister();
      services.remove({ handler: this.name });
      endpoints.remove({ handler: this.name });
    };
  }
}
