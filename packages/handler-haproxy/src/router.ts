/**
 * One balancer: a route source, the one model builder, and the applier that puts the model into
 * HAProxy. The HAProxy handler (either source) and glue-balancer --source etcd (no engine at all)
 * both run one; nothing in the apply path knows which source feeds it.
 */
import { type ContainerInspectInfo, describeLabelProblem, errorMessage, type GlueEvent, type Logger } from '@glue/core';
import { Applier, type ApplierStats } from './applier.js';
import { type BalancerModel, buildFromCandidates, type SkipNote } from './model.js';
import type { HaproxyOptions } from './options.js';
import type { RouteSource } from './source.js';
import { Renderer } from './template.js';
import { Https } from './tls/https.js';

export interface RouterOptions {
  name: string;
  options: HaproxyOptions;
  /** The haproxy binary, resolved on PATH. */
  haproxyBin: string;
  source: RouteSource;
  logger: Logger;
}

export class Router {
  readonly applier: Applier;
  readonly source: RouteSource;
  /** The HTTPS frontend's certificates (undefined without https-bind). */
  readonly https: Https | undefined;
  private readonly logger: Logger;
  private readonly options: HaproxyOptions;
  /** The last logged verdict per container, so each is logged once per change. */
  private readonly notes = new Map<string, string>();

  constructor(o: RouterOptions) {
    this.source = o.source;
    this.logger = o.logger;
    this.options = o.options;
    const p = o.options;
    this.https = p.https
      ? new Https({
          options: p.https,
          runtimeSocket: p.runtimeSocket,
          logger: o.logger,
          handlerName: o.name,
          runtimeReady: () => this.applier.runtimeReady,
          reloadSoon: () =>
            void this.applier
              .reloadSoon()
              .catch((err: unknown) =>
                o.logger.error({ err: errorMessage(err) }, `reload for the certificates failed: ${errorMessage(err)}`),
              ),
        })
      : undefined;
    this.applier = new Applier({
      mode: p.mode,
      configFile: p.configFile,
      haproxyBin: o.haproxyBin,
      reloadCommand: p.reloadCommand,
      runtimeSocket: p.runtimeSocket,
      masterSocket: p.masterSocket,
      renderer: new Renderer(p.template),
      settings: {
        httpBind: p.httpBind,
        tcpAddress: p.tcpAddress,
        runtimeSocket: p.runtimeSocket,
        ...(this.https ? { https: this.https.files } : {}),
      },
      debounceMs: p.debounceMs,
      maxDelayMs: p.maxDelayMs,
      minReloadIntervalMs: p.minReloadIntervalMs,
      fastPath: p.fastPath,
      hostMap: p.hostMap,
      tlsMap: this.https?.files.tlsMap ?? '',
      spareBackends: p.spareBackends,
      checkTimeoutMs: p.checkTimeoutMs,
      reloadTimeoutMs: p.reloadTimeoutMs,
      logger: o.logger,
      compute: () => this.computeModel(),
      alive: (id) => this.source.alive(id),
      handlerName: o.name,
      takeover: p.takeover,
    });
  }

  /** An engine event, before the apply it asks for: the source may learn from it (stop signals). */
  observe(event: GlueEvent, container: ContainerInspectInfo | undefined): void {
    this.source.observe?.(event, container);
  }

  get stats(): ApplierStats {
    return this.applier.stats;
  }

  /**
   * Starts HAProxy (managed mode) and the source. A source that pushes its own changes (etcd) gets its
   * first apply here, once it has listed; the local engine's come with Glue's events.
   */
  async start(): Promise<void> {
    await this.https?.prepare();
    await this.applier.start();
    this.https?.start();
    await this.source.start(() => this.changed());
    if (this.source.kind !== 'docker') await this.applier.request();
  }

  /** Asks for an apply (bursts coalesce); resolves when an apply that saw it finished. */
  request(): Promise<void> {
    return this.applier.request();
  }

  /** A change the source pushed: apply, and log (not throw) a failure; HAProxy keeps the last good config. */
  private changed(): void {
    this.applier
      .request()
      .catch((err: unknown) =>
        this.logger.error(
          { err: errorMessage(err) },
          `apply failed, HAProxy keeps the last good config: ${errorMessage(err)}`,
        ),
      );
  }

  async stop(): Promise<void> {
    await this.source.stop();
    await this.https?.stop();
    await this.applier.stop();
  }

  /** The model from every container the source knows, logging each container's verdict once per change. */
  computeModel(): BalancerModel {
    const { candidates, notes } = this.source.read();
    const model = buildFromCandidates(candidates, {
      tcpPorts: this.options.tcpPorts,
      reservedPorts: [this.options.httpPort, this.options.https?.port].filter((p): p is number => p !== undefined),
    });
    const seen = new Set<string>();
    for (const n of notes) {
      seen.add(n.containerId);
      const key = JSON.stringify([n.problems, n.reason, n.address]);
      if (this.notes.get(n.containerId) === key) continue;
      this.notes.set(n.containerId, key);
      this.logNote(n);
    }
    for (const id of this.notes.keys()) if (!seen.has(id)) this.notes.delete(id);
    this.https?.observe(model.tls ?? []);
    return model;
  }

  private logNote(n: SkipNote): void {
    // A Docker id (or the id after `<host>/`) shortened to its 12 digits, as `docker ps` shows it.
    const c = { container: n.containerId.replace(/([0-9a-f]{12})[0-9a-f]{52}$/, '$1'), containerName: n.containerName };
    for (const p of n.problems) {
      this.logger.warn(
        { ...c, label: p.label, value: p.value },
        `${describeLabelProblem(n.containerName, p)}; that route is dropped, others are unaffected`,
      );
    }
    if (n.reason)
      this.logger.info({ ...c, reason: n.reason }, `container ${n.containerName} is out of rotation: ${n.reason}`);
    else if (n.address)
      this.logger.info(
        { ...c, ...n.address },
        `container ${n.containerName}: using ${n.address.ip} on network ${n.address.network} (${n.address.why})`,
      );
  }
}
