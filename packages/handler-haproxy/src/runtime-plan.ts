/**
 * Pure planning of runtime API commands: what HAProxy runs (`before`) and what it should run
 * (`after`) -> the commands, in order, and what each changes. The Applier executes them and keeps
 * the bookkeeping (servers in maintenance waiting for `del server`, servers retired because their
 * container died).
 */
import { type BalancerModel, type Server, tlsFlags } from './model.js';
import { assertMapToken, mapChanges, SLOT_PREFIX, type SlotPlan } from './slots.js';

/** One runtime API command and the answer that means it worked ('' expected when absent). */
export interface RuntimeCommand {
  command: string;
  ok?: RegExp;
}

export interface RuntimeState {
  /** Host-only backends already renamed to their slots. */
  model: BalancerModel;
  plan: SlotPlan;
}

export interface RuntimePlanInput {
  before: RuntimeState;
  after: RuntimeState;
  /** Host map file ('' without one: no map commands). */
  hostMap: string;
  /** TLS map file ('' without an HTTPS frontend: no TLS map commands). */
  tlsMap?: string;
  /** `backend/server` ids in maintenance waiting for `del server`: a server coming back reuses its entry. */
  draining: ReadonlySet<string>;
  /** `backend/server` ids Glue put in maintenance because their container died (see `planRetire`). */
  retired: ReadonlySet<string>;
}

export interface RuntimePlan {
  commands: RuntimeCommand[];
  /** One line per change, for the log ("+server glue_host_1/web:80 172.17.0.3:80"). */
  changes: string[];
  /** Servers leaving (they go into maintenance; `del server` later). */
  removals: Array<{ backend: string; server: string }>;
  /** Draining or retired servers that are back in rotation. */
  restored: string[];
}

const groups = (m: BalancerModel): Map<string, Server[]> =>
  new Map([...m.http.map((b) => [b.name, b.servers] as const), ...m.tcp.map((s) => [s.name, s.servers] as const)]);

/**
 * Order: hosts that go stop routing (`del map`), servers are added and enabled or changed, new hosts
 * start routing to their ready slot (`add map`), then old servers go into maintenance.
 */
export function planRuntimeOps({
  before,
  after,
  hostMap,
  tlsMap = '',
  draining,
  retired,
}: RuntimePlanInput): RuntimePlan {
  const plan: RuntimePlan = { commands: [], changes: [], removals: [], restored: [] };
  const cmd = (command: string, ok?: RegExp): void => void plan.commands.push(ok ? { command, ok } : { command });
  const map = hostMap ? mapChanges(before.plan, after.plan) : { del: [], add: [] };
  // HTTPS hosts: those that leave stop first (a plain-HTTP host is never served with its old flags);
  // new and changed ones last, once their routes are ready.
  const tlsBefore = new Map((tlsMap ? (before.model.tls ?? []) : []).map((t) => [t.host, tlsFlags(t)]));
  const tlsAfter = new Map((tlsMap ? (after.model.tls ?? []) : []).map((t) => [t.host, tlsFlags(t)]));
  for (const host of tlsBefore.keys()) {
    if (tlsAfter.has(host)) continue;
    cmd(`del map ${tlsMap} ${assertMapToken(host, 'host')}`);
    plan.changes.push(`-https ${host}`);
  }
  for (const host of map.del) {
    cmd(`del map ${hostMap} ${assertMapToken(host, 'host')}`);
    plan.changes.push(`-host ${host}`);
  }
  const old = groups(before.model);
  const current = groups(after.model);
  // Backends that lost every route (a host gone from its slot): all their servers go.
  for (const [backend, servers] of old)
    if (!current.has(backend)) for (const s of servers) plan.removals.push({ backend, server: s.name });
  for (const [backend, servers] of current) {
    const was = new Map((old.get(backend) ?? []).map((s) => [s.name, s]));
    for (const s of servers) {
      const id = `${backend}/${s.name}`;
      const prev = was.get(s.name);
      was.delete(s.name);
      if ((!prev && draining.has(id)) || (prev && retired.has(id))) {
        // Its entry is in maintenance (waiting for deletion, or its container died and this is the
        // one that replaced it or the same one started again): point it at the container and back in.
        cmd(`set server ${id} addr ${s.address} port ${s.port}`, /./s);
        cmd(`set server ${id} weight ${s.weight}`);
        cmd(`set server ${id} state ready`);
        plan.restored.push(id);
        plan.changes.push(`+server ${id} ${s.address}:${s.port}`);
      } else if (!prev) {
        cmd(`add server ${id} ${s.address}:${s.port} weight ${s.weight}`, /New server registered/);
        cmd(`enable server ${id}`);
        plan.changes.push(`+server ${id} ${s.address}:${s.port}`);
      } else {
        if (prev.address !== s.address || prev.port !== s.port) {
          cmd(`set server ${id} addr ${s.address} port ${s.port}`, /changed|no need/i);
          plan.changes.push(`~server ${id} ${s.address}:${s.port}`);
        }
        if (prev.weight !== s.weight) {
          cmd(`set server ${id} weight ${s.weight}`);
          plan.changes.push(`~server ${id} weight ${s.weight}`);
        }
      }
    }
    for (const name of was.keys()) plan.removals.push({ backend, server: name });
  }
  for (const [host, slot] of map.add) {
    cmd(`add map ${hostMap} ${assertMapToken(host, 'host')} ${assertMapToken(slot, 'slot')}`);
    plan.changes.push(`+host ${host} ${slot}`);
  }
  for (const [host, flags] of tlsAfter) {
    const was = tlsBefore.get(host);
    if (was === flags) continue;
    cmd(
      `${was === undefined ? 'add' : 'set'} map ${tlsMap} ${assertMapToken(host, 'host')} ${assertMapToken(flags, 'flags')}`,
    );
    plan.changes.push(`${was === undefined ? '+' : '~'}https ${host} ${flags}`);
  }
  for (const r of plan.removals) {
    const id = `${r.backend}/${r.server}`;
    if (!retired.has(id)) cmd(`set server ${id} state maint`);
    plan.changes.push(`-server ${id}`);
  }
  return plan;
}

/**
 * The servers of `live` whose container no longer runs (its address is free for Docker to give to
 * another container), minus those already retired: each goes into maintenance (no new stream, and a
 * stream between connect retries is redispatched inside its backend) and has its sessions shut down
 * (streams connecting to or talking with the dead address end now, before the address can answer
 * for someone else). Returns `backend/server` ids.
 */
export function planRetire(
  live: BalancerModel,
  alive: (containerId: string) => boolean,
  retired: ReadonlySet<string>,
): string[] {
  const out: string[] = [];
  for (const [backend, servers] of groups(live)) {
    for (const s of servers) {
      const id = `${backend}/${s.name}`;
      if (!retired.has(id) && !alive(s.containerId)) out.push(id);
    }
  }
  return out;
}

export function retireCommands(id: string): RuntimeCommand[] {
  return [{ command: `set server ${id} state maint` }, { command: `shutdown sessions server ${id}` }];
}

/** `a, b, c and 4 more`: a change list short enough for one log line. */
export function summarize(changes: readonly string[], max = 8): string {
  if (changes.length <= max) return changes.join(', ');
  return `${changes.slice(0, max).join(', ')} and ${changes.length - max} more`;
}

/** Why a reload is needed, as the log says it: the structural differences between the two states. */
export function reloadReasons(before: RuntimeState | undefined, after: RuntimeState, userTemplate: boolean): string[] {
  if (!before) return ['what HAProxy runs is not known yet'];
  const routes = (m: BalancerModel): Set<string> =>
    new Set(
      m.http
        .filter((b) => !b.name.startsWith(SLOT_PREFIX))
        .map((b) => `${b.host}${b.prefix}${b.strip ? ' (strip)' : ''}`),
    );
  const ports = (m: BalancerModel): Set<string> => new Set(m.tcp.map((t) => String(t.port)));
  const reasons: string[] = [];
  const diff = (a: Set<string>, b: Set<string>, what: string): void => {
    for (const x of b) if (!a.has(x)) reasons.push(`+${what} ${x}`);
    for (const x of a) if (!b.has(x)) reasons.push(`-${what} ${x}`);
  };
  diff(routes(before.model), routes(after.model), 'route');
  diff(ports(before.model), ports(after.model), 'tcp');
  if (before.plan.declared !== after.plan.declared)
    reasons.push(`host slots ${before.plan.declared} -> ${after.plan.declared}`);
  if (reasons.length === 0)
    reasons.push(
      userTemplate ? 'the template renders a different config' : 'server changes the runtime API did not apply',
    );
  return reasons;
}
