import { accessSync, constants, mkdirSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import {
  type Agent,
  BaseHandler,
  describeLabelProblem,
  GlueError,
  type HandlerContext,
  hasRouteLabels,
  IniDocument,
  NONE,
  STATE_CHANGING_ACTIONS,
} from '@glue/core';
import { Applier, type ApplierStats } from './applier.js';
import { type BalancerModel, buildModel, type SkipNote } from './model.js';
import { type HaproxyOptions, parseHaproxyParams } from './options.js';
import { Renderer } from './template.js';

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
 * Every routing event asks for an apply; bursts coalesce into one; only servers changing goes through
 * the runtime API, anything else through `haproxy -c` and a reload.
 */
export class HAProxyHandler extends BaseHandler {
  readonly options: HaproxyOptions;
  readonly applier: Applier;
  private readonly notes = new Map<string, string>();

  /** `overrides` lets glue-balancer pass options without an INI file. */
  constructor(agent: Agent, iniFile: string, ini: IniDocument, overrides?: HaproxyOptions) {
    super(agent, iniFile, ini);
    this.options = overrides ?? parseHaproxyParams(this.name, ini.section('params'), dirname(iniFile));
    const o = this.options;
    this.applier = new Applier({
      mode: o.mode,
      configFile: o.configFile,
      haproxyBin: findBinary(o.haproxyBin) ?? o.haproxyBin,
      reloadCommand: o.reloadCommand,
      runtimeSocket: o.runtimeSocket,
      masterSocket: o.masterSocket,
      renderer: new Renderer(o.template),
      settings: { httpBind: o.httpBind, tcpAddress: o.tcpAddress, runtimeSocket: o.runtimeSocket },
      debounceMs: o.debounceMs,
      maxDelayMs: o.maxDelayMs,
      minReloadIntervalMs: o.minReloadIntervalMs,
      fastPath: o.fastPath,
      hostMap: o.hostMap,
      spareBackends: o.spareBackends,
      checkTimeoutMs: o.checkTimeoutMs,
      reloadTimeoutMs: o.reloadTimeoutMs,
      logger: this.logger,
      compute: () => this.computeModel(),
      alive: (id) => this.agent.inspect(id)?.State?.Running === true,
      handlerName: this.name,
    });
  }

  /** Builds a handler from options alone (glue-balancer, embedders). */
  static fromOptions(agent: Agent, options: HaproxyOptions, name = 'glue-balancer'): HAProxyHandler {
    return new HAProxyHandler(agent, name, new IniDocument(name, ''), options);
  }

  get stats(): ApplierStats {
    return this.applier.stats;
  }

  async start(): Promise<void> {
    if (!findBinary(this.options.haproxyBin)) {
      throw new GlueError(
        'DEPENDENCY_MISSING',
        `haproxy binary ${JSON.stringify(this.options.haproxyBin)} not found: install it (apt-get install -y haproxy) or set params haproxy`,
        { handler: this.name, file: this.iniFile },
      );
    }
    mkdirSync(dirname(this.options.configFile), { recursive: true });
    await this.applier.start();
  }

  async handle(event: string, _containerId: string, context?: HandlerContext): Promise<void> {
    if (this.agent.signal.aborted || context?.signal.aborted) return;
    // Only what can change routing: the rest (exec_*, attach, ...) is ignored without an apply.
    if (event !== NONE && !STATE_CHANGING_ACTIONS.has(event)) return;
    if (event !== 'none') {
      const labels = context?.container?.Config?.Labels ?? {};
      if (!hasRouteLabels(labels)) return;
    }
    if (context?.event.timeNano) {
      const ageMs = Date.now() - Number(context.event.timeNano / 1_000_000n);
      this.logger.debug(
        { event, container: _containerId.slice(0, 12), eventAgeMs: ageMs },
        `apply requested ${ageMs} ms after the engine's ${event} event`,
      );
    }
    await this.applier.request();
  }

  async stop(): Promise<void> {
    await this.applier.stop();
  }

  /** The model from every container Glue knows, logging each container's verdict once per change. */
  computeModel(): BalancerModel {
    const { model, notes } = buildModel(this.agent.containers(), {
      ...(this.options.network ? { network: this.options.network } : {}),
      tcpPorts: this.options.tcpPorts,
      reservedPorts: this.options.httpPort ? [this.options.httpPort] : [],
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
    return model;
  }

  private logNote(n: SkipNote): void {
    const c = { container: n.containerId.slice(0, 12), containerName: n.containerName };
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
