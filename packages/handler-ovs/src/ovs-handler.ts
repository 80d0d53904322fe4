import { readlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Agent,
  BaseHandler,
  type CommandResult,
  type CommandRunner,
  type ContainerInspectInfo,
  containerName,
  errorMessage,
  execaRunner,
  formatCommand,
  GlueError,
  type GlueErrorOptions,
  type HandlerContext,
  type IniDocument,
  LabelError,
  type LabelProblem,
  ParamError,
  Serial,
} from '@glue/core';
import { EXTERNAL_IDS, LABELS, type OvsParams, parseParams, type PortSpec, portSpecFor, wantsOvs } from './config.js';
import { handlerFailure, oneLine, OvsClient, type OvsInterface, ovsString } from './ovsdb.js';

/** Errors that already say which container they are about. */
const namesContainer = new WeakSet<object>();
import { checkInterfaceName } from './validate.js';

export interface OVSHandlerOptions {
  /** Runs ovs-vsctl, ip, nsenter and ethtool. Default: execa, argument arrays, no shell. */
  runner?: CommandRunner;
  /**
   * The network namespace of a PID (`'self'`: Glue's own), to refuse plugging a process that shares
   * Glue's namespace. Default: readlink /proc/PID/ns/net. Replaced in tests that model the host.
   */
  netnsOf?: (pid: number | 'self') => Promise<string | undefined>;
}

/** Containers attached side by side during a reconcile. */
const RECONCILE_CONCURRENCY = 4;

/** How long an attach waits for ovs-vswitchd to give a new port its ofport (it can lag add-port on netdev). */
const OFPORT_WAIT_MS = 2000;

const KNOWN_LABELS: readonly string[] = Object.values(LABELS);

/** A Linux interface name as the validators allow it: only such names reach `ip` and `ovs-vsctl`. */
const isInterfaceName = (name: string): boolean => checkInterfaceName(name) === undefined;

/** What a reconcile already read: this engine's ports of running containers, and the host's links. */
interface KnownState {
  ports: Map<string, OvsInterface>;
  links: ReadonlySet<string>;
}

/** The network namespace of a process (`net:[4026531840]`), or undefined when /proc cannot tell. */
async function procNetns(pid: number | 'self'): Promise<string | undefined> {
  return readlink(`/proc/${pid}/ns/net`).catch(() => undefined);
}

function working(i: OvsInterface): boolean {
  return i.error === '' && (i.ofport ?? 0) > 0;
}

/** What one reconcile did. */
export interface ReconcileResult {
  /** Stale ports swept (gone from the database after del-port). */
  removed: string[];
  attached: string[];
  /** Containers that could not be attached, and stale ports still there after del-port (by owner). */
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
  private readonly netnsOf: (pid: number | 'self') => Promise<string | undefined>;
  /** On every error this handler raises: its name (INI file name) and INI file. */
  private readonly tag: Pick<GlueErrorOptions, 'handler' | 'file'>;

  constructor(agent: Agent, iniFile: string, ini: IniDocument, options: OVSHandlerOptions = {}) {
    super(agent, iniFile, ini);
    const { params, problems } = parseParams(this.params);
    if (problems.length > 0) throw ParamError.of(this.name, problems);
    this.settings = params;
    this.runner = options.runner ?? execaRunner;
    this.netnsOf = options.netnsOf ?? procNetns;
    this.tag = { handler: this.name, file: this.iniFile };
    this.ovs = new OvsClient(this.runner, params.db, params.timeoutMs, this.tag);
  }

  start(): void {
    const ports = this.agent.metrics.gauge({
      name: 'glue_ovs_ports',
      help: 'Containers with a port on their bridge, as this handler last saw them',
      labelNames: ['handler'],
    });
    this.unobserve();
    const unregister = this.agent.metrics.collector(() => ports.set({ handler: this.name }, this.plugged.size));
    this.unobserve = () => {
      unregister();
      ports.remove({ handler: this.name });
    };
    // A port can go stale between events (someone ran ovs-vsctl del-port, a veth vanished): look
    // again now and then, not only at start-up and engine reconnects.
    if (this.agent.mode !== 'once') this.work.every(this.settings.reconcileIntervalMs, () => this.periodicReconcile());
  }

  async stop(): Promise<void> {
    this.unobserve();
    // A periodic reconcile in progress finishes before Glue goes on (no half-made port).
    await this.work.stop();
  }

  /** The `reconcile-interval` round (through `work`: one at a time with the handler's runs), never throws. */
  private async periodicReconcile(): Promise<void> {
    if (this.agent.signal.aborted) return;
    try {
      this.plugged.clear();
      // Bounded: runs wait behind it (exclusive), and Glue's run timeout counts that wait.
      const bound = Math.max(4 * this.settings.timeoutMs, 30_000);
      const r = await this.reconcile(AbortSignal.any([this.agent.signal, AbortSignal.timeout(bound)]));
      this.counters.swept.inc({ handler: this.name }, r.removed.length);
      this.counters.periodic.inc({ handler: this.name });
      if (r.removed.length > 0 || r.failed.length > 0)
        this.logger.warn(
          { removed: r.removed, failed: r.failed },
          `periodic reconcile: ${r.removed.length} stale port(s) removed, ${r.failed.length} container(s) failed`,
        );
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, `periodic reconcile failed: ${errorMessage(err)}`);
    }
  }

  async handle(event: string, containerId: string, context?: HandlerContext): Promise<void> {
    const signal = context?.signal ?? this.agent.signal;
    if (signal.aborted) throw new GlueError('HANDLER_CANCELLED', `${event}: not handled, Glue is stopping`, this.tag);
    if (event !== 'start' && event !== 'die' && event !== 'destroy' && event !== 'none') return;
    return this.work.run(() => this.dispatch(event, containerId, context, signal));
  }

  /** One change to OVS at a time: core runs this handler's runs (`none` and container events) one after another. */
  readonly serial = true;
  /** Containers already warned about unknown glue_ovs_* labels (forgotten on destroy). */
  private readonly labelsWarned = new Set<string>();
  /** Containers with a port on the bridge, as far as this handler's runs know (the glue_ovs_ports gauge). */
  private readonly plugged = new Set<string>();
  private readonly counters = {
    attaches: this.agent.metrics.counter({
      name: 'glue_ovs_attaches_total',
      help: 'Containers plugged into their bridge on start',
      labelNames: ['handler'],
    }),
    detaches: this.agent.metrics.counter({
      name: 'glue_ovs_detaches_total',
      help: 'Containers unplugged on die or destroy',
      labelNames: ['handler'],
    }),
    swept: this.agent.metrics.counter({
      name: 'glue_ovs_swept_ports_total',
      help: 'Stale ports (their container not running) removed by a reconcile',
      labelNames: ['handler'],
    }),
    periodic: this.agent.metrics.counter({
      name: 'glue_ovs_periodic_reconciles_total',
      help: 'Reconciles of the bridge run by reconcile-interval',
      labelNames: ['handler'],
    }),
  };
  private unobserve: () => void = () => undefined;
  /** Runs and periodic reconciles, one at a time. */
  private readonly work = new Serial();

  /** Once per container: glue_ovs_* labels this handler does not know (a typo is ignored otherwise). */
  readonly labelPrefixes = ['glue_ovs_'];

  /** `glue check`: unknown glue_ovs_* labels, and the first bad one the port spec refuses. */
  checkContainer(info: ContainerInspectInfo): LabelProblem[] {
    const labels = info.Config?.Labels ?? {};
    const problems: LabelProblem[] = Object.keys(labels)
      .filter((l) => l.startsWith('glue_ovs_') && !KNOWN_LABELS.includes(l))
      .map((label) => ({
        label,
        value: labels[label] ?? '',
        reason: `is not a known label (known: ${KNOWN_LABELS.join(', ')})`,
      }));
    try {
      portSpecFor(info, this.settings, this.tag);
    } catch (err) {
      if (!(err instanceof LabelError)) throw err;
      problems.push({ label: err.label, value: err.value, reason: err.reason });
    }
    return problems;
  }

  private warnUnknownLabels(info: ContainerInspectInfo): void {
    if (this.labelsWarned.has(info.Id)) return;
    const unknown = Object.keys(info.Config?.Labels ?? {}).filter(
      (l) => l.startsWith('glue_ovs_') && !KNOWN_LABELS.includes(l),
    );
    if (unknown.length === 0) return;
    this.labelsWarned.add(info.Id);
    for (const label of unknown) {
      this.logger.warn(
        { container: containerName(info) || info.Id.slice(0, 12), label, known: KNOWN_LABELS },
        `unknown label ${label}: ignored (known: ${KNOWN_LABELS.join(', ')})`,
      );
    }
  }

  private async dispatch(
    event: string,
    containerId: string,
    context: HandlerContext | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    if (signal.aborted) throw new GlueError('HANDLER_CANCELLED', `${event}: not handled, Glue is stopping`, this.tag);
    switch (event) {
      case 'start': {
        const info = context?.container ?? this.agent.inspect(containerId) ?? (await this.agent.refresh(containerId));
        if (!info)
          throw new GlueError(
            'HANDLER_FAILED',
            `start of ${containerId.slice(0, 12)}: the container is gone`,
            this.tag,
          );
        if ((await this.attach(info, signal)) !== undefined) {
          this.plugged.add(containerId);
          this.counters.attaches.inc({ handler: this.name });
        }
        return;
      }
      case 'die':
      case 'destroy':
        if (event === 'destroy') this.labelsWarned.delete(containerId);
        await this.detach(containerId, signal, context?.container ?? this.agent.inspect(containerId));
        if (this.plugged.delete(containerId)) this.counters.detaches.inc({ handler: this.name });
        return;
      case 'none': {
        this.plugged.clear();
        const result = await this.reconcile(signal);
        this.counters.swept.inc({ handler: this.name }, result.removed.length);
        if (result.failed.length > 0) {
          const list = result.failed.map((f) => `${f.container}: ${f.error}`).join('; ');
          throw new GlueError(
            'HANDLER_FAILED',
            `reconcile: ${result.failed.length} container(s) could not be attached or swept: ${list}`,
            this.tag,
          );
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
   * `known` (from a reconcile) lets a container whose port is fine cost no command at all.
   */
  async attach(info: ContainerInspectInfo, signal: AbortSignal, known?: KnownState): Promise<string | undefined> {
    this.warnUnknownLabels(info);
    const spec = portSpecFor(info, this.settings, this.tag);
    if (!spec) {
      const name = containerName(info);
      if (wantsOvs(info, this.settings)) {
        this.logger.warn(
          { container: name },
          'skipped: no bridge (set ovs-bridge in [params] or a glue_ovs_bridge label)',
        );
      } else if (Object.keys(info.Config?.Labels ?? {}).some((l) => l.startsWith('glue_ovs_'))) {
        this.logger.info(
          { container: name, networkMode: info.HostConfig?.NetworkMode },
          'skipped: has glue_ovs_* labels but neither --network none nor glue_ovs_bridge',
        );
      }
      return undefined;
    }
    if (!info.State?.Running || spec.pid <= 0) {
      this.logger.debug({ container: spec.containerName }, 'not running: nothing to attach');
      return undefined;
    }
    const seen = known?.ports.get(spec.hostPort);
    if (
      seen &&
      working(seen) &&
      seen.externalIds[EXTERNAL_IDS.container] === spec.containerId &&
      known?.links.has(spec.hostPort)
    ) {
      this.logger.debug({ container: spec.containerName, port: spec.hostPort }, 'already attached');
      return spec.hostPort;
    }
    const { bridge, interfaces: existing } = await this.about(
      spec.containerName,
      this.ovs.lookup(
        spec.bridge,
        { [EXTERNAL_IDS.container]: spec.containerId, [EXTERNAL_IDS.iface]: spec.iface },
        signal,
      ),
    );
    if (!bridge) {
      throw this.containerError(
        spec.containerName,
        `OVS bridge ${spec.bridge} does not exist (create it: ovs-vsctl add-br ${spec.bridge})`,
      );
    }
    const current = existing.find((i) => i.name === spec.hostPort);
    if (current && working(current) && (await this.linkExists(spec.hostPort, signal))) {
      this.logger.debug({ container: spec.containerName, port: spec.hostPort }, 'already attached');
      return spec.hostPort;
    }
    // Labels said it is the container's own namespace; make sure it is not ours (the host's) after all.
    if (await this.sharesOurNetns(spec.pid)) {
      throw this.containerError(
        spec.containerName,
        `process ${spec.pid} is in Glue's own network namespace (network mode ${info.HostConfig?.NetworkMode ?? 'unknown'}): refusing to plug it`,
      );
    }
    // Whatever is left of an earlier attempt (or of the container's previous run) goes first.
    if (existing.length > 0) {
      const left = await this.about(
        spec.containerName,
        this.removePorts(
          existing.map((p) => p.name),
          signal,
        ),
      );
      if (left.length > 0) {
        throw this.containerError(
          spec.containerName,
          `old ports still on the bridge after del-port: ${left.join(', ')}`,
        );
      }
    }

    try {
      await this.build(spec, bridge.datapathType, signal);
    } catch (err) {
      // Roll back even when the run was cancelled: a fresh, bounded signal for the clean-up.
      await this.removePorts([spec.hostPort], AbortSignal.timeout(this.settings.timeoutMs)).then(
        (left) => {
          if (left.length > 0)
            this.logger.error(
              { container: spec.containerName, port: spec.hostPort },
              'could not roll back a half-built port: still on the bridge after del-port',
            );
        },
        (e: unknown) => {
          this.logger.error(
            { container: spec.containerName, port: spec.hostPort, err: errorMessage(e) },
            'could not roll back a half-built port',
          );
        },
      );
      throw this.containerError(
        spec.containerName,
        `could not attach ${spec.iface} to ${spec.bridge}: ${errorMessage(err)}`,
        err,
      );
    }
    this.logger.info(
      {
        container: spec.containerName,
        bridge: spec.bridge,
        port: spec.hostPort,
        iface: spec.iface,
        ip: spec.settings.cidr,
        vlan: spec.settings.vlan,
      },
      'attached to OVS',
    );
    return spec.hostPort;
  }

  /** The veth on the host (one `ip -batch`), then at once: the container side (`ip -batch` in its namespace, ethtool) and add-port with its read-back. */
  private async build(spec: PortSpec, datapathType: string, signal: AbortSignal): Promise<void> {
    const { iface, peer, hostPort, settings: s } = spec;
    const pid = String(spec.pid);
    const host = [
      `link add ${hostPort} type veth peer name ${peer}`,
      `link set dev ${peer} netns ${pid}`,
      ...(s.mtu ? [`link set dev ${hostPort} mtu ${s.mtu}`] : []),
      `link set dev ${hostPort} up`,
    ];
    try {
      await this.batch(['ip', '-batch', '-'], host, signal);
    } catch (err) {
      // A veth left by a crash in the middle of an earlier attach: remove it and try once more.
      if (!/File exists/.test(errorMessage(err))) throw err;
      await this.deleteLink(hostPort, signal);
      await this.batch(['ip', '-batch', '-'], host, signal);
    }
    const inside = [
      `link set dev ${peer} name ${iface}`,
      ...(s.mac ? [`link set dev ${iface} address ${s.mac}`] : []),
      ...(s.mtu ? [`link set dev ${iface} mtu ${s.mtu}`] : []),
      ...(s.cidr ? [`addr add ${s.cidr} dev ${iface}`] : []),
      `link set dev ${iface} up`,
      ...(s.gateway ? [`route replace default via ${s.gateway} dev ${iface}`] : []),
    ];
    // The userspace (netdev) datapath does not fill in checksums the veth left to offload: TCP dies.
    const txOff =
      this.settings.txOffload === 'off' || (this.settings.txOffload === 'auto' && datapathType === 'netdev');
    // The container's side and the bridge's side do not depend on each other: both run at once.
    const [container, bridge] = await Promise.allSettled([
      (async () => {
        try {
          await this.batch(['nsenter', '-t', pid, '-n', '--', 'ip', '-batch', '-'], inside, signal);
        } catch (err) {
          if (/File exists[\s\S]*Command failed -:1\b/.test(errorMessage(err))) {
            throw this.fail(
              `the container already has an interface named ${iface} (choose another with glue_ovs_interface or ovs-interface): ${errorMessage(err)}`,
            );
          }
          throw err;
        }
        if (txOff) await this.must('nsenter', ['-t', pid, '-n', '--', 'ethtool', '-K', iface, 'tx', 'off'], signal);
      })(),
      this.addPort(spec, signal),
    ]);
    // The container's error first: it says what to change (an interface name taken, say).
    if (container.status === 'rejected') throw container.reason;
    if (bridge.status === 'rejected') throw bridge.reason;
  }

  /** add-port with the external_ids (and tag), then a read-back of the Interface row: exit 0 is not enough. */
  private async addPort(spec: PortSpec, signal: AbortSignal): Promise<void> {
    const { iface, hostPort, settings: s } = spec;
    const engine = this.agent.engine()?.id ?? '';
    const ids = [
      `external_ids:${EXTERNAL_IDS.container}=${ovsString(spec.containerId)}`,
      `external_ids:${EXTERNAL_IDS.iface}=${ovsString(iface)}`,
      ...(engine ? [`external_ids:${EXTERNAL_IDS.engine}=${ovsString(engine)}`] : []),
    ];
    const args = ['--may-exist', 'add-port', spec.bridge, hostPort, '--', 'set', 'Interface', hostPort, ...ids];
    if (s.vlan !== undefined) args.push('--', 'set', 'Port', hostPort, `tag=${s.vlan}`);
    const added = await this.ovs.vsctl(args, signal, `adding port ${hostPort}`);
    // OVS reports a device it could not open in the Interface's error column, and a port without an
    // ofport carries no traffic. ovs-vswitchd can assign the ofport a little after add-port.
    const wait = Math.min(OFPORT_WAIT_MS, this.settings.timeoutMs);
    const deadline = Date.now() + wait;
    let row = await this.ovs.getInterface(hostPort, signal);
    for (
      let delay = 10;
      row && row.error === '' && row.ofport === undefined && Date.now() < deadline;
      delay = Math.min(delay * 2, 200)
    ) {
      await sleep(delay, undefined, { signal });
      row = await this.ovs.getInterface(hostPort, signal);
    }
    if (!row)
      throw this.fail(`ovs-vsctl add-port exited 0 but ${hostPort} is not in the database (${oneLine(added.stderr)})`);
    if (row.error === '' && row.ofport === undefined)
      throw this.fail(`OVS gave ${hostPort} no ofport within ${wait} ms of add-port`);
    if (row.error !== '' || row.ofport === undefined || row.ofport <= 0)
      throw this.fail(
        `OVS cannot use ${hostPort}: ${row.error || `ofport ${row.ofport ?? 'unset'}`}${added.stderr ? ` (${oneLine(added.stderr)})` : ''}`,
      );
  }

  /**
   * Removes every port tagged with this container, and their veths. Idempotent. With the container's
   * last inspection the port Glue made for it is known by name: it is removed in the same ovs-vsctl
   * call that lists the container's ports, so the usual case costs that call and a read-back.
   */
  async detach(containerId: string, signal: AbortSignal, info?: ContainerInspectInfo): Promise<string[]> {
    if (!/^[0-9a-f]{12,64}$/.test(containerId)) return [];
    return this.about(containerId.slice(0, 12), this.detachPorts(containerId, signal, info));
  }

  private async detachPorts(
    containerId: string,
    signal: AbortSignal,
    info: ContainerInspectInfo | undefined,
  ): Promise<string[]> {
    const ids = { [EXTERNAL_IDS.container]: containerId };
    const expected = info?.Id === containerId ? this.expectedPort(info) : undefined;
    const { before: ports, after: others } = expected
      ? await this.ovs.deletePortsAndFind([expected], ids, signal)
      : await this.ovs.findInterfaces(ids, signal).then((found) => ({ before: found, after: found }));
    if (ports.length === 0) return [];
    const names = ports.map((p) => p.name);
    // Ports under other names: made by ovs-docker, or for another bridge or interface.
    await this.ovs.deletePorts(
      others.map((p) => p.name).filter((n) => isInterfaceName(n)),
      signal,
    );
    // The veths usually went with the container's namespace; delete them while checking the outcome.
    const [left] = await Promise.all([
      this.ovs.findInterfaces(ids, signal),
      Promise.all(names.map((n) => this.deleteLink(n, signal))),
    ]);
    if (left.length > 0) {
      throw this.containerError(
        containerId.slice(0, 12),
        `ports still on the bridge after del-port: ${left.map((p) => p.name).join(', ')}`,
      );
    }
    this.logger.info({ container: containerId.slice(0, 12), ports: names }, 'removed from OVS');
    return names;
  }

  /** The port Glue would make for this container now, if any (labels that do not check out: none). */
  private expectedPort(info: ContainerInspectInfo): string | undefined {
    try {
      return portSpecFor(info, this.settings)?.hostPort;
    } catch {
      return undefined;
    }
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
    const known: KnownState = { ports: new Map(), links: await this.hostLinks(signal) };
    if (engine) {
      const stale = new Map<string, string>();
      for (const port of await this.ovs.findInterfaces({ [EXTERNAL_IDS.engine]: engine }, signal)) {
        const owner = port.externalIds[EXTERNAL_IDS.container] ?? '';
        if (runningIds.has(owner)) {
          known.ports.set(port.name, port);
          continue;
        }
        stale.set(port.name, owner);
        this.logger.info(
          { port: port.name, container: owner.slice(0, 12) },
          'sweeping a port whose container is not running',
        );
      }
      // del-port can exit 0 and leave the port: what is still there after the sweep is a failure.
      const left = new Set(await this.removePorts([...stale.keys()], signal, known.links));
      for (const [name, owner] of stale) {
        if (!left.has(name)) {
          result.removed.push(name);
          continue;
        }
        this.logger.error(
          { port: name, container: owner.slice(0, 12) },
          'stale port still on the bridge after del-port',
        );
        result.failed.push({
          container: owner.slice(0, 12) || '(unknown)',
          error: `stale port ${name} still on the bridge after del-port`,
        });
      }
    } else {
      this.logger.warn('engine ID unknown: stale ports not swept');
    }
    // A few at a time: each container has its own veth names, OVS serialises its transactions.
    const queue = [...running];
    const worker = async (): Promise<void> => {
      for (let info = queue.shift(); info && !signal.aborted; info = queue.shift()) {
        try {
          const port = await this.attach(info, signal, known);
          if (port) {
            result.attached.push(port);
            this.plugged.add(info.Id);
          }
        } catch (err) {
          // One bad container does not keep the others off the bridge.
          this.logger.error({ container: containerName(info), err: errorMessage(err) }, 'could not attach');
          result.failed.push({ container: containerName(info), error: errorMessage(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(RECONCILE_CONCURRENCY, queue.length) }, worker));
    return result;
  }

  /** Names of the host's network devices, in one `ip` call. */
  private async hostLinks(signal: AbortSignal): Promise<Set<string>> {
    const r = await this.must('ip', ['-o', 'link', 'show'], signal);
    const names = new Set<string>();
    for (const line of r.stdout.split('\n')) {
      const m = /^\d+:\s+([^:@\s]+)/.exec(line);
      if (m) names.add(m[1]!);
    }
    return names;
  }

  /**
   * Ports out of OVS (one transaction), read back (del-port can exit 0 and leave them), then the host
   * veths of those gone (when `links` is known, only those there). Returns the ports still present.
   */
  private async removePorts(
    names: readonly string[],
    signal: AbortSignal,
    links?: ReadonlySet<string>,
  ): Promise<string[]> {
    const valid = names.filter((name) => {
      if (isInterfaceName(name)) return true;
      this.logger.warn({ port: name }, 'port name is not a Linux interface name: left alone');
      return false;
    });
    if (valid.length === 0) return [];
    await this.ovs.deletePorts(valid, signal);
    const left = new Set(await this.ovs.present(valid, signal));
    for (const name of valid) if (!left.has(name) && (!links || links.has(name))) await this.deleteLink(name, signal);
    return [...left];
  }

  /** True when the process is in Glue's own network namespace; unknown counts as not (nsenter fails then). */
  private async sharesOurNetns(pid: number): Promise<boolean> {
    const [theirs, ours] = await Promise.all([this.netnsOf(pid), this.netnsOf('self')]);
    return theirs !== undefined && theirs === ours;
  }

  private async linkExists(name: string, signal: AbortSignal): Promise<boolean> {
    const r = await this.runner('ip', ['-o', 'link', 'show', 'dev', name], {
      signal,
      timeoutMs: this.settings.timeoutMs,
    });
    return r.exitCode === 0;
  }

  /** Deletes a host link; its absence is fine (a veth goes with its peer's namespace). */
  private async deleteLink(name: string, signal: AbortSignal): Promise<void> {
    if (!isInterfaceName(name)) return;
    const r = await this.runner('ip', ['link', 'del', 'dev', name], { signal, timeoutMs: this.settings.timeoutMs });
    if (r.exitCode !== 0 && !/Cannot find device|does not exist/i.test(r.stderr)) {
      throw new GlueError(
        'COMMAND_FAILED',
        `\`${formatCommand('ip', ['link', 'del', 'dev', name])}\` exited ${r.exitCode}: ${oneLine(r.stderr)}`,
        this.tag,
      );
    }
  }

  /** `ip -batch -` (maybe inside a namespace): one process for several commands; values were validated. */
  private async batch(argv: string[], lines: string[], signal: AbortSignal): Promise<void> {
    const [file, ...args] = argv as [string, ...string[]];
    const r = await this.runner(file, args, {
      signal,
      timeoutMs: this.settings.timeoutMs,
      input: `${lines.join('\n')}\n`,
    });
    if (r.exitCode !== 0)
      throw this.fail(
        `\`${formatCommand(file, args)}\` (${lines.join('; ')}) exited ${r.exitCode}: ${oneLine(r.stderr || r.stdout)}`,
      );
  }

  /** An error about one container: `container <name>: <what>`, tagged, and known to name it. */
  private containerError(container: string, what: string, cause?: unknown): GlueError {
    const err = new GlueError('HANDLER_FAILED', `container ${container}: ${what}`, {
      ...this.tag,
      ...(cause === undefined ? {} : { cause }),
    });
    namesContainer.add(err);
    return err;
  }

  /** Errors of `work` name the container (unless they already do: known by identity, not by their text). */
  private about<T>(container: string, work: Promise<T>): Promise<T> {
    return work.catch((err: unknown) => {
      if (err instanceof LabelError || (err instanceof Error && namesContainer.has(err))) throw err;
      throw this.containerError(container, errorMessage(err), err);
    });
  }

  private fail(message: string, cause?: unknown): GlueError {
    return handlerFailure(this.tag, message, cause);
  }

  private async must(file: string, args: string[], signal: AbortSignal): Promise<CommandResult> {
    const r = await this.runner(file, args, { signal, timeoutMs: this.settings.timeoutMs });
    if (r.exitCode !== 0)
      throw this.fail(`\`${formatCommand(file, args)}\` exited ${r.exitCode}: ${oneLine(r.stderr || r.stdout)}`);
    return r;
  }
}
