/**
 * Host slots: every host-only HTTP route (a host without a prefix) is served by a backend named
 * `glue_host_<n>` and routed by the host map (`<host> glue_host_<n>` lines), so a new host can be
 * added at run time (add server + add map) as long as the running config declares a free slot. The
 * config declares the used slots plus a pool of spares; a host keeps its slot while it exists, so the
 * file written after a runtime change describes exactly what HAProxy runs.
 */
import type { BalancerModel, HttpBackend } from './model.js';

export interface SlotPlan {
  /** Slots the config declares: `glue_host_0` .. `glue_host_<declared-1>`. */
  declared: number;
  /** Host -> slot index, for every host-only route. */
  assignment: ReadonlyMap<string, number>;
  /**
   * Hosts that left their slot since the last reload -> that slot. HAProxy may still hold streams of
   * the old host in the slot's backend (queued, or between connect retries), and a retry is
   * redispatched inside the backend: given to another host, the slot would send those requests to
   * the other host's containers. So a vacated slot goes to no other host until the Applier has seen
   * it empty (`releaseSlots`) or a reload starts a worker without those streams; its own host may
   * come back to it at any time.
   */
  vacated?: ReadonlyMap<string, number>;
}

/** One declared slot as the template sees it. A spare has host '' and no servers. */
export interface HostSlot {
  name: string;
  index: number;
  host: string;
  servers: HttpBackend['servers'];
}

export const SLOT_PREFIX = 'glue_host_';

export function slotName(index: number): string {
  return `${SLOT_PREFIX}${index}`;
}

/** Only hostname characters may reach the map file or the runtime socket (never whitespace or a line break). */
const MAP_TOKEN = /^[a-z0-9][a-z0-9._-]{0,252}$/;

export function assertMapToken(value: string, what: string): string {
  if (!MAP_TOKEN.test(value))
    throw new Error(
      `refusing to write ${what} ${JSON.stringify(value)} to the HAProxy host map: only lower-case hostname characters are allowed`,
    );
  return value;
}

/** Hosts of the host-only routes, sorted. */
export function slotHosts(model: BalancerModel): string[] {
  return model.http
    .filter((b) => b.prefix === '')
    .map((b) => b.host)
    .sort();
}

/**
 * Assigns slots: hosts of `previous` keep theirs, new hosts take the lowest free index. `refresh`
 * (a reload is coming anyway, or nothing runs yet) declares a fresh pool of `spare` free slots;
 * otherwise the declared count only grows if the new hosts do not fit (which then needs a reload).
 */
export function planSlots(
  hosts: readonly string[],
  previous: SlotPlan | undefined,
  spare: number,
  refresh: boolean,
): SlotPlan {
  const assignment = new Map<string, number>();
  const used = new Set<number>();
  const wanted = [...new Set(hosts)].sort();
  for (const h of wanted) {
    const i = previous?.assignment.get(h) ?? previous?.vacated?.get(h);
    if (i !== undefined && !used.has(i)) {
      assignment.set(h, i);
      used.add(i);
    }
  }
  // Without a reload, slots other hosts left stay theirs (see SlotPlan.vacated); a reload frees them.
  const vacated = new Map<string, number>();
  if (!refresh && previous) {
    for (const [h, i] of [...(previous.vacated ?? []), ...previous.assignment])
      if (!assignment.has(h) && !used.has(i)) vacated.set(h, i);
  }
  const blocked = new Set([...used, ...vacated.values()]);
  let next = 0;
  for (const h of wanted) {
    if (assignment.has(h)) continue;
    while (blocked.has(next)) next += 1;
    assignment.set(h, next);
    used.add(next);
    blocked.add(next);
  }
  const top = blocked.size === 0 ? 0 : Math.max(...blocked) + 1;
  const declared = refresh || !previous ? Math.max(top, used.size + spare) : Math.max(top, previous.declared);
  return vacated.size > 0 ? { declared, assignment, vacated } : { declared, assignment };
}

/** `plan` with the vacated `slots` given back to the pool (the Applier saw their backends empty). */
export function releaseSlots(plan: SlotPlan, slots: ReadonlySet<number>): SlotPlan {
  const vacated = new Map([...(plan.vacated ?? [])].filter(([, i]) => !slots.has(i)));
  return vacated.size > 0
    ? { declared: plan.declared, assignment: plan.assignment, vacated }
    : { declared: plan.declared, assignment: plan.assignment };
}

/** Host-only backends renamed to their slots, and every declared slot for the template. */
export function placeModel(model: BalancerModel, plan: SlotPlan): { model: BalancerModel; slots: HostSlot[] } {
  const slots: HostSlot[] = Array.from({ length: plan.declared }, (_, index) => ({
    name: slotName(index),
    index,
    host: '',
    servers: [],
  }));
  const http = model.http.map((b) => {
    if (b.prefix !== '') return b;
    const index = plan.assignment.get(b.host);
    const slot = index === undefined ? undefined : slots[index];
    if (!slot) throw new Error(`host ${b.host} has no slot (internal error)`);
    slot.host = b.host;
    slot.servers = b.servers;
    // Stripping an empty prefix changes nothing: a slot never rewrites the path.
    return { ...b, name: slot.name, strip: false };
  });
  return { model: { ...model, http }, slots };
}

/** The host map file: `<host> <slot>` per line, sorted by host. */
export function hostMapText(plan: SlotPlan): string {
  return [...plan.assignment.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([host, i]) => `${assertMapToken(host, 'host')} ${slotName(i)}\n`)
    .join('');
}

/** Map entries to delete and add to turn `before` into `after` (a moved host is deleted then added). */
export function mapChanges(before: SlotPlan, after: SlotPlan): { del: string[]; add: Array<[string, string]> } {
  const del: string[] = [];
  const add: Array<[string, string]> = [];
  for (const [host, i] of before.assignment) if (after.assignment.get(host) !== i) del.push(host);
  for (const [host, i] of after.assignment) if (before.assignment.get(host) !== i) add.push([host, slotName(i)]);
  return { del: del.sort(), add: add.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) };
}

export function sameAssignment(a: SlotPlan, b: SlotPlan): boolean {
  if (a.assignment.size !== b.assignment.size) return false;
  for (const [h, i] of a.assignment) if (b.assignment.get(h) !== i) return false;
  return true;
}
