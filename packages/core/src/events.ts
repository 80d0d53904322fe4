/** Docker container actions Glue knows; `none` and `all` are Glue's own. */
export const CONTAINER_ACTIONS = [
  'attach',
  'commit',
  'copy',
  'create',
  'destroy',
  'detach',
  'die',
  'exec_create',
  'exec_detach',
  'exec_die',
  'exec_start',
  'export',
  'health_status',
  'kill',
  'oom',
  'pause',
  'prune',
  'rename',
  'resize',
  'restart',
  'start',
  'stop',
  'top',
  'unpause',
  'update',
] as const;

/** The dummy event fired once at start-up (container id `''`) and after `triggers-none` handlers. */
export const NONE = 'none';
/** Matches every real event, never `none`. */
export const ALL = 'all';

export type ContainerAction = (typeof CONTAINER_ACTIONS)[number];

/** One Docker event as Glue hands it to handlers. */
export interface GlueEvent {
  /** The action with any `: detail` removed: `health_status: healthy` -> `health_status`. */
  action: string;
  /** The text after `: `, e.g. `healthy` for health_status, the command for exec_start. */
  detail?: string | undefined;
  /** Container id; `''` for `none`. */
  id: string;
  /** Actor attributes (labels, name, image, exitCode, ...), as the engine sent them. */
  attributes: Readonly<Record<string, string>>;
  /** Event time in nanoseconds since the epoch (0 for `none`). */
  timeNano: bigint;
}

/** The engine's wire format (API >= 1.22): Type / Action / Actor; the old status / id are not read. */
export interface EngineEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

const KNOWN = new Set<string>(CONTAINER_ACTIONS);

/**
 * The actions after which a container is not what it was (its state, name, config or health; or it is
 * gone): Glue re-inspects the container on each but `destroy`, and a handler that keeps a view of the
 * containers (HAProxy's routes) acts on these. `exec_*`, `attach`, `top`, ... change nothing.
 */
export const STATE_CHANGING_ACTIONS: ReadonlySet<string> = new Set([
  'create',
  'start',
  'restart',
  'die',
  'stop',
  'kill',
  'oom',
  'pause',
  'unpause',
  'rename',
  'update',
  'health_status',
  'destroy',
]);

export function isKnownEvent(name: string): boolean {
  return name === NONE || name === ALL || KNOWN.has(name);
}

/** Reads one engine event; returns undefined for anything that is not a well-formed container event. */
export function parseEngineEvent(raw: unknown): GlueEvent | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const e = raw as EngineEvent;
  if (e.Type !== 'container' || typeof e.Action !== 'string') return undefined;
  const id = e.Actor?.ID;
  if (typeof id !== 'string' || !/^[0-9a-f]{12,64}$/.test(id)) return undefined;
  const colon = e.Action.indexOf(':');
  const action = (colon === -1 ? e.Action : e.Action.slice(0, colon)).trim();
  const detail = colon === -1 ? undefined : e.Action.slice(colon + 1).trim();
  if (!/^[a-z_]{1,32}$/.test(action)) return undefined;
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.Actor?.Attributes ?? {})) {
    if (typeof v === 'string') attributes[k] = v;
  }
  const timeNano =
    typeof e.timeNano === 'number'
      ? BigInt(Math.trunc(e.timeNano))
      : typeof e.time === 'number'
        ? BigInt(Math.trunc(e.time)) * 1_000_000_000n
        : 0n;
  return { action, detail, id, attributes, timeNano };
}

export function noneEvent(): GlueEvent {
  return { action: NONE, id: '', attributes: {}, timeNano: 0n };
}
