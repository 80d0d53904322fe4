import {
  type Agent,
  BaseHandler,
  containerName,
  type ContainerInspectInfo,
  type EngineIdentity,
  describeLabelProblem,
  errorMessage,
  GlueError,
  type HandlerContext,
  type IniDocument,
  ParamError,
} from '@glue/core';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from './client.js';
import { DEFAULT_WRITE_TIMEOUT_S, parseParams, type PublisherSettings } from './params.js';
import { containerEntries, isPublished } from './record.js';
import { observeSync } from './metrics.js';
import { EtcdSync, type SyncState } from './sync.js';

/**
 * `glue -1` could not get the containers into etcd: the run fails (exit code 1) instead of reporting
 * success for keys that are not there. Names the endpoints, the INI file and etcd's answer.
 */
/**
 * The host id an engine publishes under when `host-id` is not set: its name and a short form of its
 * identity (`web-01-3f2a9c1e`), so two engines on one machine, or clones of one VM image, never share
 * one; the same engine gets the same id after a restart.
 */
export function defaultHostId(engine: EngineIdentity | undefined): string | undefined {
  if (!engine || engine.id === '') return undefined;
  const name = engine.name
    .replace(/[^A-Za-z0-9._:@-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 200);
  return name ? `${name}-${engine.id.slice(0, 8)}` : engine.id;
}

export class EtcdPublishError extends GlueError {
  readonly endpoints: readonly string[];

  constructor(handler: string, file: string, endpoints: readonly string[], message: string) {
    super('BACKEND_UNAVAILABLE', message, { handler, file });
    this.name = 'EtcdPublishError';
    this.endpoints = endpoints;
  }
}

/**
 * Publishes the engine's running containers to etcd for service discovery (the original's
 * `distconfig.Publisher`). One key per running container under its host, an index by HTTP virtual
 * host, all on one lease kept alive by this agent; reconciled at start-up, after reconnects and after
 * etcd outages. See the package README for the key layout and params.
 */
export class Publisher extends BaseHandler {
  readonly settings: PublisherSettings;
  private client: Etcd3 | undefined;
  private sync: EtcdSync | undefined;
  private seeded = false;
  private stopped = false;
  /** Label problems already logged, per container (forgotten on destroy). */
  private readonly reported = new Map<string, Set<string>>();
  private unobserve: () => void = () => undefined;

  constructor(agent: Agent, iniFile: string, ini: IniDocument) {
    super(agent, iniFile, ini);
    const { settings, problems } = parseParams(this.params);
    if (problems.length > 0 || settings === undefined)
      throw ParamError.of(this.name, problems.length > 0 ? problems : [{ key: 'params', reason: 'invalid' }]);
    this.settings = settings;
    const events = ini.get('handler', 'events', '').split(/[\s,]+/);
    if (!events.includes('none')) {
      this.logger.warn(
        `${this.name}: events= has no "none": keys are reconciled only when a container event comes, not at start-up or after an engine reconnect (use events=all,none)`,
      );
    }
  }

  /** The host id keys are published under, once known (from `host-id` or the engine). */
  get host(): string | undefined {
    return this.sync?.host;
  }

  /** Where publishing is: `starting`, `up`, `down` (etcd unreachable or refusing), `stopped`; undefined before start(). */
  get state(): SyncState | undefined {
    return this.sync?.state;
  }

  /** The publishing engine (its totals, lease, last error), for benchmarks and status pages. */
  get publishing(): EtcdSync | undefined {
    return this.sync;
  }

  /**
   * Creates the etcd client (reads the TLS files). Publishing starts with the first event (the
   * start-up `none`), once the engine's containers are known: never with an empty picture that would
   * sweep the keys of a daemon restarting after a crash.
   */
  async start(): Promise<void> {
    this.ensureClient();
    this.unobserve(); // a second start() must not register twice
    this.unobserve = observeSync(this.agent.metrics, this.name, () => this.sync);
  }

  /** Ready while publishing (/readyz): the keys are in etcd on a live lease. */
  ready(): string | undefined {
    const sync = this.sync;
    if (sync === undefined) return 'not publishing yet (waiting for the first inventory)';
    if (sync.state === 'up') return undefined;
    if (sync.state === 'starting') return 'connecting to etcd';
    return `etcd is ${sync.state}${sync.lastError ? `: ${sync.lastError}` : ''}`;
  }

  /** `glue -1` (or `runOnce()`): the `none` waits for etcd and fails if it is not reached; the keys outlive the run. */
  get runsOnce(): boolean {
    return this.agent.mode === 'once';
  }

  async handle(event: string, containerId: string, context: HandlerContext): Promise<void> {
    if (this.stopped || this.agent.signal.aborted || context.signal.aborted) return;
    const sync = this.ensureSync();
    if (sync === undefined) {
      this.logger.debug({ event }, 'etcd: engine not known yet; publishing starts with the next event');
      return;
    }
    if (event === 'none' || !this.seeded) {
      // Start-up, engine reconnect, or the first event: rebuild from every container Glue knows.
      const all = new Map<string, Map<string, string>>();
      for (const info of this.agent.containers())
        if (isPublished(info)) all.set(info.Id, this.entries(info, sync.host));
      sync.replaceAll(all);
      this.seeded = true;
      sync.start();
    }
    if (event !== 'none' && containerId !== '') {
      if (event === 'destroy') this.reported.delete(containerId);
      const info = event === 'destroy' ? undefined : (context.container ?? this.agent.inspect(containerId));
      sync.set(containerId, isPublished(info) ? this.entries(info, sync.host) : undefined);
    }
    if (this.runsOnce) {
      await this.confirm(sync, context.signal);
      return;
    }
    const synced = await sync.flushed(this.settings.writeTimeoutMs, context.signal);
    if (!synced && sync.state === 'up') {
      this.logger.warn(
        { event, container: containerId.slice(0, 12) },
        `etcd: ${event} not in etcd after ${this.settings.writeTimeoutMs} ms; still retrying in the background`,
      );
    }
  }

  /**
   * Stops publishing; with `delete-on-stop` (default) revokes the lease so every key goes at once.
   * Under `glue -1` the lease is never revoked: the keys stay until the TTL runs out (publishing them
   * only to delete them as the run exits would be pointless).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unobserve();
    try {
      await this.sync?.stop(this.settings.deleteOnStop && !this.runsOnce);
    } finally {
      this.client?.close();
    }
  }

  /**
   * Run-once: waits (bounded by `write-timeout`, 5 s when it is 0) until the keys are in etcd, riding
   * over failed attempts; throws an EtcdPublishError if they are not, so `glue -1` exits non-zero.
   */
  private async confirm(sync: EtcdSync, signal: AbortSignal): Promise<void> {
    const bound = this.settings.writeTimeoutMs > 0 ? this.settings.writeTimeoutMs : DEFAULT_WRITE_TIMEOUT_S * 1000;
    if (await sync.flushed(bound, signal, { throughOutages: true })) {
      this.logger.info({ host: sync.host, ttl: this.settings.ttlSeconds }, `etcd: ${sync.host} published (run once)`);
      return;
    }
    const endpoints = this.settings.endpoints.join(',');
    const why = signal.aborted ? 'the run was stopped' : (sync.lastError ?? `no answer within ${bound / 1000} s`);
    throw new EtcdPublishError(
      this.name,
      this.iniFile,
      this.settings.endpoints,
      `[${this.name}] etcd: the containers of ${sync.host} did not reach etcd at ${endpoints} within ${bound / 1000} s (${why}); ` +
        `glue -1 cannot vouch for any key. Check that etcd is up and endpoints (and user/password, TLS files) in ${this.iniFile} [params]`,
    );
  }

  private ensureClient(): Etcd3 {
    if (this.client) return this.client;
    try {
      this.client = createEtcdClient({
        endpoints: this.settings.endpoints,
        auth: this.settings.auth,
        tls: this.settings.tls,
      });
    } catch (err) {
      throw new GlueError('HANDLER_FAILED', `[${this.name}] ${errorMessage(err)}`, {
        handler: this.name,
        file: this.iniFile,
        cause: err,
      });
    }
    return this.client;
  }

  private ensureSync(): EtcdSync | undefined {
    if (this.sync || this.stopped) return this.sync;
    const host = this.settings.hostId ?? defaultHostId(this.agent.engine());
    if (host === undefined) return undefined;
    this.sync = new EtcdSync({
      client: this.ensureClient(),
      prefix: this.settings.prefix,
      host,
      ttlSeconds: this.settings.ttlSeconds,
      logger: this.logger,
      engine: () => this.agent.engine(),
      backoffMaxMs: this.settings.backoffMaxMs,
      resyncMs: this.settings.resyncMs,
      endpoints: this.settings.endpoints,
      user: this.settings.auth?.username,
      configFile: this.iniFile,
    });
    this.logger.info(
      { host, prefix: this.settings.prefix, endpoints: this.settings.endpoints },
      `etcd: publishing containers of ${host} under ${this.settings.prefix}`,
    );
    return this.sync;
  }

  private entries(info: ContainerInspectInfo, host: string): Map<string, string> {
    const { entries, problems } = containerEntries(
      info,
      this.settings.prefix,
      host,
      this.settings.fields,
      this.settings.endpoint,
    );
    for (const p of problems) {
      const seen = this.reported.get(info.Id) ?? new Set<string>();
      this.reported.set(info.Id, seen);
      const id = `${p.label}\0${p.value}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const name = containerName(info) || info.Id.slice(0, 12);
      this.logger.warn(
        { container: info.Id.slice(0, 12), containerName: name, label: p.label, value: p.value },
        `${describeLabelProblem(name, p)}; that route is not indexed in etcd (the container is still published, its other routes are indexed)`,
      );
    }
    return entries;
  }
}

/** The same class under a name that says what it does. */
export { Publisher as EtcdPublisher };
