import type Dockerode from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';
import { GlueError, type GlueErrorCode } from './errors.js';
import type { GlueEvent } from './events.js';
import type { IniDocument } from './ini-document.js';
import type { Logger } from './logger.js';
import type { LabelProblem } from './labels.js';
import type { Metrics } from './metrics.js';
import type { HandlerClaim } from './claims.js';

export type { ContainerInspectInfo };

/**
 * What a handler gets from the daemon: the engine client, the cached inspections and a logger.
 * The `agent` of the original's plugin recipe.
 */
export interface Agent {
  readonly docker: Dockerode;
  readonly logger: Logger;
  /** The last inspection of a container: still there on `die` and `destroy`. */
  inspect(id: string): ContainerInspectInfo | undefined;
  /** Every container Glue knows, running or not, with its last inspection. */
  containers(): ContainerInspectInfo[];
  /** Inspects one container again now (and updates the cache); undefined if it is gone. */
  refresh(id: string): Promise<ContainerInspectInfo | undefined>;
  /** Asks for the `none` event to fire again soon (coalesced). */
  triggerNone(): void;
  /**
   * Where the handler adds its Prometheus metrics (`glue_<handler>_...`; bounded labels, never one
   * per container). Creating a metric that exists returns it, so a handler built again keeps its series.
   */
  readonly metrics: Metrics;
  /**
   * The engine, once connected: `name` is `docker info` Name; `id` identifies this engine among
   * others (`docker info` ID, its data root and its name, hashed: engines that share a
   * `/etc/docker/key.json` or a cloned VM image share the ID alone); `dockerId` is the raw ID.
   */
  engine(): EngineIdentity | undefined;
  /**
   * How the daemon runs: `once` (`glue -1`, `runOnce()`: the `none` handlers, then stop) or `watch`
   * (`glue -w`, `start()`); undefined until one of them is called. A handler whose work outlives the
   * event (a lease, a background loop) can act on it, e.g. wait for its write in run-once mode.
   */
  readonly mode: RunMode | undefined;
  /**
   * Aborted when the daemon has stopped: after stop() let the handlers in flight finish, or when its
   * shutdown bound ran out. Long operations should give up then.
   */
  readonly signal: AbortSignal;
}

export type RunMode = 'once' | 'watch';

/** Extra facts about the event being handled. */
export interface HandlerContext {
  readonly event: GlueEvent;
  /** The container's last inspection (undefined for `none` or a container never seen). */
  readonly container: ContainerInspectInfo | undefined;
  /**
   * Aborted when the handler run times out, or when the daemon stops and this run is still going after
   * the shutdown bound (a stop lets runs in flight finish first).
   */
  readonly signal: AbortSignal;
}

/** Who the engine is (see Agent.engine). */
export interface EngineIdentity {
  id: string;
  name: string;
  dockerId: string;
}

/** The handler contract. A class implementing it is constructed as `new Cls(agent, iniFile, ini)`. */
export interface Handler {
  handle(event: string, containerId: string, context: HandlerContext): Promise<void> | void;
  /** Called once after every handler was constructed, before the first event. */
  start?(): Promise<void> | void;
  /** Called once on shutdown, after events in flight finished (or the bound ran out). */
  stop?(): Promise<void> | void;
  /**
   * The longest one run can take by the handler's own limit, cleanup included (handler-exec: its
   * `[params] timeout` plus the time to kill the script). Glue's per-run bound (`[handler] timeout`,
   * default 60 s) is raised to this, so Glue never gives up on a run the handler still allows.
   */
  readonly runTimeoutMs?: number;
  /**
   * Concurrency. By default Glue runs a handler for different containers side by side (one container's
   * events always in order, one at a time), and the `none` run beside container events. `serial: true`
   * makes Glue run this handler's runs one at a time, in the order they come (a handler that changes
   * one shared thing, like an OVS bridge, needs no lock of its own). A run's timeout counts from when
   * it starts, not while it waits for the one before.
   */
  readonly serial?: boolean;
  /**
   * The handler's readiness check for `/readyz`: undefined when it does its job, else what is wrong
   * (the publisher: "no lease"; HAProxy: "the last apply failed: ..."). Cheap: called on every probe,
   * bounded to 2 s.
   */
  ready?(): string | undefined | Promise<string | undefined>;
  /**
   * For `glue check`: what is wrong with this container's labels by this handler's grammar (none: []).
   * Pure: read the inspection, contact nothing. Glue checks the shared routing labels itself.
   */
  checkContainer?(container: ContainerInspectInfo): LabelProblem[];
  /** The `glue_*` label families this handler reads (`glue_ovs_`): `glue check` flags labels no handler reads. */
  readonly labelPrefixes?: readonly string[];
  /**
   * What this handler owns alone among the loaded handlers (the nftables handler with `protocols=udp,tcp`
   * and the HAProxy handler both claim `glue_tcp_<port>_port labels`): Glue refuses to load two that
   * claim the same thing, naming both.
   */
  readonly claims?: readonly HandlerClaim[];
}

export type HandlerClass = new (agent: Agent, iniFile: string, ini: IniDocument) => Handler;

/**
 * Base class for handlers, as in docker-glue's plugin recipe: extend it, read your params in the
 * constructor (throw a ParamError for a bad one), implement `handle(event, containerId)`.
 */
export abstract class BaseHandler implements Handler {
  readonly agent: Agent;
  readonly iniFile: string;
  readonly ini: IniDocument;
  /** The INI file's base name: how logs and errors name this handler. */
  readonly name: string;
  readonly logger: Logger;

  constructor(agent: Agent, iniFile: string, ini: IniDocument) {
    this.agent = agent;
    this.iniFile = iniFile;
    this.ini = ini;
    this.name = iniFile.split(/[\\/]/).pop() ?? iniFile;
    this.logger = agent.logger.child({ handler: this.name });
  }

  /** `[params]` as written. */
  get params(): Record<string, string> {
    return this.ini.section('params');
  }

  /** A GlueError tagged with this handler and its INI file: the one way a handler builds its errors. */
  protected error(code: GlueErrorCode, message: string, cause?: unknown): GlueError {
    return new GlueError(code, message, {
      handler: this.name,
      file: this.iniFile,
      ...(cause === undefined ? {} : { cause }),
    });
  }

  abstract handle(event: string, containerId: string, context: HandlerContext): Promise<void> | void;
}

export function isHandlerClass(value: unknown): value is HandlerClass {
  return (
    typeof value === 'function' &&
    typeof (value as { prototype?: { handle?: unknown } }).prototype?.handle === 'function'
  );
}
