/**
 * The model -> one nft script that replaces this handler's table in a single transaction (`nft -f -`
 * applies a script atomically: packets see the old table or the new one, never a half-made one).
 * Pure. Every value is checked again here, whatever the model's source: only IPv4 addresses,
 * integers in range and names of `[a-z0-9_]` are ever written, so no label can add a statement.
 *
 *     table ip glue {
 *       map services { type inet_proto . inet_service : verdict; elements = { udp . 53 : goto svc_udp_53 } }
 *       chain prerouting { type nat hook prerouting priority dstnat; ... meta l4proto . th dport vmap @services }
 *       chain output { type nat hook output priority -100; ... (the same, for clients on this host) }
 *       chain svc_udp_53 { numgen random mod 200 vmap { 0-99 : goto ep_udp_53_..., 100-199 : goto ep_udp_53_... } }
 *       chain ep_udp_53_3f2a9c0d1e2b { meta l4proto udp dnat ip to 172.17.0.2:53 }
 *     }
 */
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { MAX_WEIGHT } from '@glue/core';
import type { L4Endpoint, L4Model, L4Service } from './model.js';
import type { Family } from './params.js';

/** Marks the table as Glue's (the comment of its prerouting rule): a table without it is not replaced. */
export const OWNER_MARK = 'managed by Glue';

/** The packet mark bit that asks for masquerade (set in an endpoint chain, matched in postrouting). */
export const MASQUERADE_MARK = 0x4000;

export interface RulesetSettings {
  table: string;
  family: Family;
  listen: readonly string[] | 'local';
  masquerade: boolean;
}

const TABLE = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Thrown for a value that must never reach nft (a source that skipped its checks). */
export class UnsafeValueError extends Error {}

function port(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UnsafeValueError(`${what} ${String(n)} is not a port`);
  return n;
}

function address(a: string): string {
  if (!isIPv4(a)) throw new UnsafeValueError(`${JSON.stringify(a)} is not an IPv4 address`);
  return a;
}

export const serviceChain = (s: Pick<L4Service, 'protocol' | 'port'>): string => `svc_${s.protocol}_${s.port}`;

/** `ep_udp_53_<12 hex>_<port>`: the container id's first 12 digits (a hash for ids that are not Docker's). */
export function endpointChain(s: Pick<L4Service, 'protocol' | 'port'>, e: Pick<L4Endpoint, 'id' | 'port'>): string {
  const id = /^[0-9a-f]{12,64}$/.test(e.id)
    ? e.id.slice(0, 12)
    : createHash('sha1').update(e.id).digest('hex').slice(0, 12);
  return `${serviceChain(s)}_${id}_${port(e.port, 'endpoint port')}`.replace(/^svc_/, 'ep_');
}

/** The weighted choice: `numgen random mod TOTAL` ranges in proportion to the weights (weight 0: none). */
export function weightedRanges(endpoints: readonly L4Endpoint[]): {
  total: number;
  ranges: [number, number, number][];
} {
  let total = 0;
  const ranges: [number, number, number][] = [];
  endpoints.forEach((e, i) => {
    if (!Number.isInteger(e.weight) || e.weight < 0 || e.weight > MAX_WEIGHT)
      throw new UnsafeValueError(`weight ${String(e.weight)} is not 0-${MAX_WEIGHT}`);
    if (e.weight === 0) return;
    ranges.push([total, total + e.weight - 1, i]);
    total += e.weight;
  });
  return { total, ranges };
}

/**
 * The table's changing part as data: each service and endpoint chain with its rules, and the service
 * map's elements. The base chains (hooks, the listen set, masquerade) depend on the settings alone.
 */
export interface TableSpec {
  /** Chain name -> its rules, services first, in model order. */
  chains: Map<string, string[]>;
  /** `udp . 53` -> `svc_udp_53`. */
  elements: Map<string, string>;
}

const MARK = `0x${MASQUERADE_MARK.toString(16).padStart(8, '0')}`;

/** The model as chains and map elements; every value checked on the way. */
export function tableSpec(model: L4Model, settings: Pick<RulesetSettings, 'masquerade'>): TableSpec {
  const chains = new Map<string, string[]>();
  const elements = new Map<string, string>();
  for (const s of model.services) {
    if (s.protocol !== 'udp' && s.protocol !== 'tcp') throw new UnsafeValueError(`protocol ${String(s.protocol)}`);
    const { total, ranges } = weightedRanges(s.endpoints);
    const names = s.endpoints.map((e) => endpointChain(s, e));
    let choice: string;
    if (ranges.length === 0) choice = 'drop';
    else if (ranges.length === 1) choice = `goto ${names[ranges[0]![2]]!}`;
    else {
      const list = ranges.map(([lo, hi, i]) => `${lo === hi ? lo : `${lo}-${hi}`} : goto ${names[i]!}`);
      choice = `numgen random mod ${total} vmap { ${list.join(', ')} }`;
    }
    elements.set(`${s.protocol} . ${port(s.port, 'listen port')}`, serviceChain(s));
    chains.set(serviceChain(s), [choice]);
    s.endpoints.forEach((e, i) => {
      const comment = NAME.test(e.name) ? ` comment "${e.name}"` : '';
      chains.set(names[i]!, [
        ...(settings.masquerade ? [`meta mark set meta mark | ${MARK}`] : []),
        `meta l4proto ${s.protocol} dnat ip to ${address(e.address)}:${port(e.port, 'endpoint port')}${comment}`,
      ]);
    });
  }
  return { chains, elements };
}

function checkTable(settings: Pick<RulesetSettings, 'family' | 'table'>): string {
  if (!TABLE.test(settings.table)) throw new UnsafeValueError(`${JSON.stringify(settings.table)} is not a table name`);
  return `${settings.family} ${settings.table}`;
}

/** The whole table: `add table` (so the delete cannot fail), `delete table`, the new table: one transaction. */
export function renderRuleset(model: L4Model, settings: RulesetSettings): string {
  return renderFull(tableSpec(model, settings), settings);
}

/** The whole table from its spec (see renderRuleset). */
export function renderFull(spec: TableSpec, settings: RulesetSettings): string {
  const head = checkTable(settings);
  const match =
    settings.listen === 'local'
      ? 'fib daddr type local ip daddr != 127.0.0.0/8'
      : `ip daddr ${settings.listen.length === 1 ? address(settings.listen[0]!) : '@listen'}`;
  const dispatch = `${match} meta l4proto . th dport vmap @services comment "${OWNER_MARK}"`;
  const elements = [...spec.elements].map(([k, chain]) => `${k} : goto ${chain}`);
  const lines = [
    `add table ${head}`,
    `delete table ${head}`,
    `table ${head} {`,
    '  map services {',
    '    type inet_proto . inet_service : verdict',
    ...(elements.length > 0 ? [`    elements = { ${elements.join(', ')} }`] : []),
    '  }',
  ];
  if (settings.listen !== 'local' && settings.listen.length > 1)
    lines.push(
      '  set listen {',
      '    type ipv4_addr',
      `    elements = { ${settings.listen.map(address).join(', ')} }`,
      '  }',
    );
  lines.push(
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    `    ${dispatch}`,
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    `    ${dispatch}`,
    '  }',
  );
  if (settings.masquerade)
    lines.push(
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    meta mark & ${MARK} == ${MARK} masquerade`,
      '  }',
    );
  for (const [name, rules] of spec.chains) lines.push(`  chain ${name} {`, ...rules.map((r) => `    ${r}`), '  }');
  lines.push('}', '');
  return lines.join('\n');
}

const sameRules = (a: readonly string[] | undefined, b: readonly string[]): boolean =>
  a !== undefined && a.length === b.length && a.every((r, i) => r === b[i]);

/**
 * Only what changed between two specs, still one transaction: new chains first (so what refers to
 * them finds them), changed chains flushed and refilled, map elements deleted and added, then chains
 * nothing refers to any more deleted (service chains before the endpoint chains they pointed at).
 * undefined when nothing changed. A change to one service costs the same in a table of 1 or 1,000.
 */
export function renderPatch(
  before: TableSpec,
  after: TableSpec,
  settings: Pick<RulesetSettings, 'family' | 'table'>,
): string | undefined {
  const head = checkTable(settings);
  const lines: string[] = [];
  for (const name of after.chains.keys()) if (!before.chains.has(name)) lines.push(`add chain ${head} ${name}`);
  for (const [name, rules] of after.chains) {
    const old = before.chains.get(name);
    if (sameRules(old, rules)) continue;
    if (old !== undefined) lines.push(`flush chain ${head} ${name}`);
    for (const r of rules) lines.push(`add rule ${head} ${name} ${r}`);
  }
  const gone = [...before.elements].filter(([k, chain]) => after.elements.get(k) !== chain).map(([k]) => k);
  const added = [...after.elements].filter(([k, chain]) => before.elements.get(k) !== chain);
  if (gone.length > 0) lines.push(`delete element ${head} services { ${gone.join(', ')} }`);
  if (added.length > 0)
    lines.push(`add element ${head} services { ${added.map(([k, c]) => `${k} : goto ${c}`).join(', ')} }`);
  const removed = [...before.chains.keys()].filter((name) => !after.chains.has(name));
  removed.sort((a, b) => Number(b.startsWith('svc_')) - Number(a.startsWith('svc_')));
  for (const name of removed) lines.push(`delete chain ${head} ${name}`);
  return lines.length === 0 ? undefined : `${lines.join('\n')}\n`;
}

/** Removes the table (remove-on-stop): `add` first so that a table already gone is no error. */
export function renderDelete(settings: Pick<RulesetSettings, 'family' | 'table'>): string {
  const head = checkTable(settings);
  return `add table ${head}\ndelete table ${head}\n`;
}
