import { accessSync, constants, mkdirSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import {
  type Agent,
  BaseHandler,
  GlueError,
  type HandlerClaim,
  type HandlerContext,
  hasRouteLabels,
  IniDocument,
  type Logger,
  NONE,
  STATE_CHANGING_ACTIONS,
} from '@glue/core';
import type { Applier, ApplierStats } from './applier.js';
import { dockerSource } from './docker-source.js';
import { EtcdSource } from './etcd-source.js';
import type { BalancerModel } from './model.js';
import { type HaproxyOptions, parseHaproxyParams } from './options.js';
import { observeRouter, routerProblem } from './metrics.js';
import { Router } from './router.js';
import type { RouteSource } from './source.js';

function findBinary(name: string): string | undefined {
  if (isAbsolute(name)) return name;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    try {
      accessSync(join(d, name), constants.X_OK);
      return join(d, name);
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * Label-driven HAProxy load balancing (docker-glue's `DockerGlue.handlers.lb.HAProxyHandler`).
 * With `source=docker` (the default) every routing event asks for an apply; with `source=etcd` the
 * routes come from the cluster index in etcd and the engine's events are ignored. Bursts coalesce
 * into one apply; only servers changing goes through the runtime API, anything else through
 * `haproxy -c` and a reload.
 */
export class HAProxyHandler extends BaseHandler {
  readonly options: HaproxyOptions;
  readonly router: Router;
  /** glue_tcp_* labels: one handler only (the nftables handler can balance them too). */
  readonly claims: readonly HandlerClaim[];
  private unobserve: () => void = () => undefined;

  /** `overrides` lets glue-balancer pass options without an INI file. */
  constructor(agent: Agent, iniFile: string, ini: IniDocument, overrides?: HaproxyOptions) {
    super(agent, iniFile, ini);
    this.options = overrides ?? parseHaproxyParams(this.name, ini.section('params'), dirname(iniFile));
    this.router = createRouter(this.name, this.options, this.logger, agent);
    this.claims = this.options.tcp ? [{ what: 'glue_tcp_<port>_port labels', key: 'tcp-ports' }] : [];
  }

  /** Builds a handler from options alone (glue-balancer, embedders). */
  static fromOptions(agent: Agent, options: HaproxyOptions, name = 'glue-balancer'): HAProxyHandler {
    return new HAProxyHandler(agent, name, new IniDocument(name, ''), options);
  }

  get applier(): Applier {
    return this.router.applier;
  }

  get stats(): ApplierStats {
    return this.router.stats;
  }

  async start(): Promise<void> {
    checkBinary(this.options, this.name, this.iniFile);
    this.unobserve(); // a second start() must not register twice
    this.unobserve = observeRouter(this.agent.metrics, this.name, this.router);
    try {
      await this.router.start();
    } catch (err) {
      // Glue drops a handler whose start failed without calling stop(): leave no collector behind.
      this.unobserve();
      this.unobserve = () => undefined;
      throw err;
    }
  }

  /** Ready once an apply succeeded and while the last one did (/readyz). */
  ready(): string | undefined {
    return routerProblem(this.router);
  }

  async handle(event: string, _containerId: string, context?: HandlerContext): Promise<void> {
    if (this.agent.signal.aborted || context?.signal.aborted) return;
    // source=etcd: the cluster index is the only input; this engine's events change nothing.
    if (this.options.source !== 'docker') return;
    // Only what can change routing: the rest (exec_*, attach, ...) is ignored without an apply.
    if (event !== NONE && !STATE_CHANGING_ACTIONS.has(event)) return;
    if (event !== 'none') {
      const labels = context?.container?.Config?.Labels ?? {};
      if (!hasRouteLabels(labels)) return;
      // `kill` with a stop signal: the container leaves rotation now, its servers drain (core's StoppingContainers).
      if (context) this.router.observe(context.event, context.container);
    }
    if (context?.event.timeNano) {
      const ageMs = Date.now() - Number(context.event.timeNano / 1_000_000n);
      this.logger.debug(
        { event, container: _containerId.slice(0, 12), eventAgeMs: ageMs },
        `apply requested ${ageMs} ms after the engine's ${event} event`,
      );
    }
    await this.router.request();
  }

  async stop(): Promise<void> {
    this.unobserve();
    await this.router.stop();
  }

  /** The model from every container the source knows (tests, embedders). */
  computeModel(): BalancerModel {
    return this.router.computeModel();
  }
}

/** Fails with the install hint when the haproxy binary is not there. */
export function checkBinary(options: HaproxyOptions, handler: string, file?: string): void {
  if (findBinary(options.haproxyBin)) return;
  throw new GlueError(
    'DEPENDENCY_MISSING',
    `haproxy binary ${JSON.stringify(options.haproxyBin)} not found: install it (apt-get install -y haproxy) or set params haproxy`,
    { handler, ...(file !== undefined ? { file } : {}) },
  );
}

/**
 * The router for these options: the local engine's containers (`agent` required) or the etcd index.
 * In watch mode an etcd unreachable at start is retried; with -1 it fails.
 */
export function createRouter(
  name: string,
  options: HaproxyOptions,
  logger: Logger,
  agent?: Agent,
  once: () => boolean = () => agent?.mode === 'once',
): Router {
  let source: RouteSource;
  if (options.source === 'etcd') {
    if (!options.etcd) throw new GlueError('INVALID_STATE', 'source=etcd without etcd settings', { handler: name });
    source = new EtcdSource({ connection: options.etcd, logger, retry: () => !once() });
  } else {
    if (!agent) throw new GlueError('INVALID_STATE', 'source=docker needs the engine', { handler: name });
    source = dockerSource(agent, options.network, options.tcp);
  }
  mkdirSync(dirname(options.configFile), { recursive: true });
  return new Router({
    name,
    options,
    haproxyBin: findBinary(options.haproxyBin) ?? options.haproxyBin,
    source,
    logger,
  });
}
