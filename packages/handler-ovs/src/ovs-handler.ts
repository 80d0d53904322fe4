import { type Agent, BaseHandler, type ContainerInspectInfo, containerName, errorMessage, GlueError, type HandlerContext, type IniDocument, ParamError } from '@glue/core';
import { EXTERNAL_IDS, type OvsParams, parseParams, type PortSpec, portSpecFor } from './config.js';
import { oneLine, OvsClient, ovsString } from './ovsdb.js';
import { type CommandResult, type CommandRunner, execaRunner, formatCommand } from './runner.js';

export interface OVSHandlerOptions {
  /** Runs ovs-vsctl, ip, nsenter and ethtool. Default: execa, argument arrays, no shell. */
  runner?: CommandRunner;
}

/** What one reconcile did. */
export interface ReconcileResult {
  removed: string[];
  attached: string[];
  failed: { container: string; error: string }[];
}

/**
 * Plugs containers into Open vSwitch: a veth pair per container, one end renamed inside the
 * container's network namespace, the other a port on the bridge tagged with external_ids
 * (`container_id`, `container_iface` as ovs-docker writes them, plus `glue_engine`).
 *
 * - `start`: attach (idempotent). `die` / `destroy`: remove the container's ports.
 * - `none`: reconcile: ports of this engine whose container is not running are removed, running
 *   containers without their port get it.
 */
export class OVSHandler extends BaseHandler {
  readonly settings: OvsParams;
  private readonly runner: CommandRunner;
  private readonly ovs: OvsClient;

  constructor(agent: Agent, iniFile: string, ini: IniDocument, options: OVSHandlerOptions = {}) {
    super(agent, iniFile, ini);
    const { params, problems } = parseParams(this.params);
    const first = problems[0];
    if (first) {
      const rest = problems.slice(1).map((p) => `; ${p.key}: ${p.reason}`).join('');
      throw new ParamError(this.name, first.key, `${first.reason}${rest}`);
    }
    this.settings = params;
    this.runner = options.runner ?? execaRunner;
    this.ovs = new OvsClient(this.runner, params.db, params.timeoutMs);
  }

  async handle(event: string, containerId: string, context?: HandlerContext): Promise<void> {
    const signal = context?.signal ?? this.agent.signal;
    if (signal.aborted) throw new GlueError('HANDLER_FAILED', `${event}: not handled, Glue is stopping`, { handler: this.name });
    if (event !== 'start' && event !== 'die' && event !== 'destroy' && event !== 'none') return;
    // Core runs `none` and container events side by side: one change to OVS at a time here.
    const run = this.chain.then(() => this.dispatch(event, containerId, context, signal));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private chain: Promise<void> = Promise.resolve();

  private async dispatch(event: string, containerId: string, context: HandlerContext | undefined, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new GlueError('HANDLER_FAILED', `${event}: not handled, Glue is stopping`, { handler: this.name });
    switch (event) {
      case 'start': {
        const info = context?.container ?? this.agent.inspect(containerId) ?? (await this.agent.refresh(containerId));
        if (!info) throw new GlueError('HANDLER_FAILED', `start of ${containerId.slice(0, 12)}: the container is gone`, { handler: this.name });
        await this.attach(info, signal);
        return;
      }
      case 'die':
      case 'destroy':
        await this.detach(containerId, signal);
        return;
      case 'none': {
        const result = await this.reconcile(signal);
        if (result.failed.length > 0) {
          const list = result.failed.map((f) => `${f.container}: ${f.error}`).join('; ');
          throw new GlueError('HANDLER_FAILED', `reconcile: ${result.failed.length} container(s) could not be attached: ${list}`, { handler: this.name });
        }
        return;
      }
      default:
        return;
    }
  }

  /**
   * Plugs one container, if it is for this handler. Returns the port name, or undefined when the
   * container is not ours. Idempotent: a port that is there and working is left alone.
   */
  async attach(info: ContainerInspectInfo, signal: AbortSignal): Promise<string | undefined> {
    const spec = portSpecFor(info, this.settings);
    if (!spec) {
      this.logger.debug({ container: containerName(info) }, 'not for OVS (network mode is not none and no glue_ovs_bridge label, or no bridge): skipped');
      return undefined;
    }
    if (!info.State?.Running || spec.pid <= 0) {
      this.logger.debug({ container: spec.containerName }, 'not running: nothing to attach');
      return undefined;
    }
    const bridge = await this.ovs.bridge(spec.bridge, signal);
    if (!bridge) {
      throw new GlueError('HANDLER_FAILED', `container ${spec.containerName}: OVS bridge ${spec.bridge} does not exist (create it: ovs-vsctl add-br ${spec.bridge})`, { handler: this.name });
    }
    const existing = await this.ovs.findInterfaces({ [EXTERNAL_IDS.container]: spec.containerId, [EXTERNAL_IDS.iface]: spec.iface }, signal);
    const current = existing.find((i) => i.name === spec.hostPort);
    if (current && current.error === '' && (current.ofport ?? 0) > 0 && (await this.linkExists(spec.hostPort, signal))) {
      this.logger.debug({ container: spec.containerName, port: spec.hostPort }, 'already attached');
      return spec.hostPort;
    }
    // Whatever is left of an earlier attempt (or of the container's previous run) goes first.
    for (const old of existing) await this.removePort(old.name, signal);
    await this.deleteLink(spec.hostPort, signal);

    try {
      await this.build(spec, bridge.datapathType, signal);
    } catch (err) {
      await this.removePort(spec.hostPort, signal).catch(() => undefined);
      await this.deleteLink(spec.hostPort, signal).catch(() => undefined);
      throw new GlueError('HANDLER_FAILED', `container ${spec.containerName}: could not attach ${spec.iface} to ${spec.bridge}: ${errorMessage(err)}`, { handler: this.name, cause: err });
    }
    this.logger.info(
      { container: spec.containerName, bridge: spec.bridge, port: spec.hostPort, iface: spec.iface, ip: spec.settings.cidr, vlan: spec.settings.vlan },
      'attached to OVS',
    );
    return spec.hostPort;
  }

  private async build(spec: PortSpec, datapathType: string, signal: AbortSignal): Promise<void> {
    const { iface, peer, hostPort, settings: s } = spec;
    const pid = String(spec.pid);
    const ns = (args: string[]): Promise<CommandResult> => this.must('nsenter', ['-t', pid, '-n', '--', ...args], signal);
    await this.must('ip', ['link', 'add', hostPort, 'type', 'veth', 'peer', 'name', peer], signal);
    await this.must('ip', ['link', 'set', 'dev', peer, 'netns', pid], signal);
    await ns(['ip', 'link', 'set', 'dev', peer, 'name', iface]);
    if (s.mac) await ns(['ip', 'link', 'set', 'dev', iface, 'address', s.mac]);
    if (s.mtu) {
      await ns(['ip', 'link', 'set', 'dev', iface, 'mtu', String(s.mtu)]);
      await this.must('ip', ['link', 'set', 'dev', hostPort, 'mtu', String(s.mtu)], signal);
    }
    if (s.cidr) await ns(['ip', 'addr', 'add', s.cidr, 'dev', iface]);
    await ns(['ip', 'link', 'set', 'dev', iface, 'up']);
    if (s.gateway) await ns(['ip', 'route', 'replace', 'default', 'via', s.gateway, 'dev', iface]);
    // The userspace (netdev) datapath does not fill in checksums the veth left to offload: TCP dies.
    const txOff = this.settings.txOffload === 'off' || (this.settings.txOffload === 'auto' && datapathType === 'netdev');
    if (txOff) await ns(['ethtool', '-K', iface, 'tx', 'off']);
    await this.must('ip', ['link', 'set', 'dev', hostPort, 'up'], signal);

    const engine = this.agent.engine()?.id ?? '';
    const ids = [
      `external_ids:${EXTERNAL_IDS.container}=${ovsString(spec.containerId)}`,
      `external_ids:${EXTERNAL_IDS.iface}=${ovsString(iface)}`,
      ...(engine ? [`external_ids:${EXTERNAL_IDS.engine}=${ovsString(engine)}`] : []),
    ];
    const args = ['--may-exist', 'add-port', spec.bridge, hostPort, '--', 'set', 'Interface', hostPort, ...ids];
    if (s.vlan !== undefined) args.push('--', 'set', 'Port', hostPort, `tag=${s.vlan}`);
    const added = await this.ovs.vsctl(args, signal, `adding port ${hostPort}`);
    // Exit 0 is not enough: OVS reports a device it could not open in the Interface's error column.
    const row = await this.ovs.getInterface(hostPort, signal);
    if (!row) throw new Error(`ovs-vsctl add-port exited 0 but ${hostPort} is not in the database (${oneLine(added.stderr)})`);
    if (row.error !== '' || row.ofport === -1) throw new Error(`OVS cannot use ${hostPort}: ${row.error || 'ofport -1'}${added.stderr ? ` (${oneLine(added.stderr)})` : ''}`);
  }

  /** Removes every port tagged with this container, and their veths. Idempotent. */
  async detach(containerId: string, signal: AbortSignal): Promise<string[]> {
    if (!/^[0-9a-f]{12,64}$/.test(containerId)) return [];
    const ports = await this.ovs.findInterfaces({ [EXTERNAL_IDS.container]: containerId }, signal);
    for (const p of ports) await this.removePort(p.name, signal);
    const left = await this.ovs.findInterfaces({ [EXTERNAL_IDS.container]: containerId }, signal);
    if (left.length > 0) {
      throw new GlueError('HANDLER_FAILED', `container ${containerId.slice(0, 12)}: ports still on the bridge after del-port: ${left.map((p) => p.name).join(', ')}`, { handler: this.name });
    }
    if (ports.length > 0) this.logger.info({ container: containerId.slice(0, 12), ports: ports.map((p) => p.name) }, 'removed from OVS');
    return ports.map((p) => p.name);
  }

  /**
   * Start-up sweep: ports of this engine whose container is not running are removed (with their
   * veths); running containers for this handler get their port if it is missing or broken.
   */
  async reconcile(signal: AbortSignal): Promise<ReconcileResult> {
    const result: ReconcileResult = { removed: [], attached: [], failed: [] };
    const running = this.agent.containers().filter((c) => c.State?.Running);
    const runningIds = new Set(running.map((c) => c.Id));
    const engine = this.agent.engine()?.id;
    if (engine) {
      for (const port of await this.ovs.findInterfaces({ [EXTERNAL_IDS.engine]: engine }, signal)) {
        const owner = port.externalIds[EXTERNAL_IDS.container] ?? '';
        if (runningIds.has(owner)) continue;
        await this.removePort(port.name, signal);
        result.removed.push(port.name);
        this.logger.info({ port: port.name, container: owner.slice(0, 12) }, 'swept a port whose container is not running');
      }
    } else {
      this.logger.warn('engine ID unknown: stale ports not swept');
    }
    for (const info of running) {
      if (signal.aborted) break;
      try {
        const port = await this.attach(info, signal);
        if (port) result.attached.push(port);
      } catch (err) {
        // One bad container does not keep the others off the bridge.
        this.logger.error({ container: containerName(info), err: errorMessage(err) }, 'could not attach');
        result.failed.push({ container: containerName(info), error: errorMessage(err) });
      }
    }
    return result;
  }

  private async removePort(name: string, signal: AbortSignal): Promise<void> {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/.test(name)) {
      this.logger.warn({ port: name }, 'port name is not a Linux interface name: left alone');
      return;
    }
    await this.ovs.deletePort(name, signal);
    await this.deleteLink(name, signal);
  }

  private async linkExists(name: string, signal: AbortSignal): Promise<boolean> {
    const r = await this.runner('ip', ['-o', 'link', 'show', 'dev', name], { signal, timeoutMs: this.settings.timeoutMs });
    return r.exitCode === 0;
  }

  /** Deletes a host link; its absence is fine (a veth goes with its peer's namespace). */
  private async deleteLink(name: string, signal: AbortSignal): Promise<void> {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/.test(name)) return;
    const r = await this.runner('ip', ['link', 'del', 'dev', name], { signal, timeoutMs: this.settings.timeoutMs });
    if (r.exitCode !== 0 && !/Cannot find device|does not exist/i.test(r.stderr)) {
      throw new GlueError('HANDLER_FAILED', `\`${formatCommand('ip', ['link', 'del', 'dev', name])}\` exited ${r.exitCode}: ${oneLine(r.stderr)}`, { handler: this.name });
    }
  }

  private async must(file: string, args: string[], signal: AbortSignal): Promise<CommandResult> {
    const r = await this.runner(file, args, { signal, timeoutMs: this.settings.timeoutMs });
    if (r.exitCode !== 0) throw new Error(`\`${formatCommand(file, args)}\` exited ${r.exitCode}: ${oneLine(r.stderr || r.stdout)}`);
    return r;
  }
}
