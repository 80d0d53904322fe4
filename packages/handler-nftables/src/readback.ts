/**
 * What the kernel holds, read back from `nft -j list table`: whether the table is Glue's, and the
 * endpoints its rules send flows to. Pure. At start-up this is how a restarted Glue knows what the
 * last run (or a crash) left: endpoints no longer wanted lose their conntrack entries after the
 * table is replaced, the others keep theirs and their flows.
 */
import { isIPv4 } from 'node:net';
import type { Flowpoint } from './model.js';
import { OWNER_MARK } from './ruleset.js';

export interface TableState {
  /** The prerouting rule carries Glue's mark. */
  owned: boolean;
  /** `udp . 53`-style entries of the services map. */
  services: number;
  /** Every dnat target of an `ep_<protocol>_...` chain. */
  endpoints: Flowpoint[];
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' ? (v as Json) : undefined);

/** Parses `nft -j list table` output; throws on what is not nft's JSON. */
export function parseTable(text: string): TableState {
  const doc = obj(JSON.parse(text));
  const items = doc?.['nftables'];
  if (!Array.isArray(items)) throw new Error('not nft JSON output (no "nftables" array)');
  let owned = false;
  let services = 0;
  const endpoints = new Map<string, Flowpoint>();
  for (const item of items) {
    const map = obj(obj(item)?.['map']);
    if (map?.['name'] === 'services' && Array.isArray(map['elem'])) services = map['elem'].length;
    const rule = obj(obj(item)?.['rule']);
    if (!rule) continue;
    if (rule['chain'] === 'prerouting' && rule['comment'] === OWNER_MARK) owned = true;
    const chain = typeof rule['chain'] === 'string' ? rule['chain'] : '';
    const protocol = /^ep_(udp|tcp)_/.exec(chain)?.[1] as 'udp' | 'tcp' | undefined;
    if (!protocol || !Array.isArray(rule['expr'])) continue;
    for (const e of rule['expr']) {
      const dnat = obj(obj(e)?.['dnat']);
      const addr = dnat?.['addr'];
      const port = dnat?.['port'];
      if (typeof addr === 'string' && isIPv4(addr) && typeof port === 'number' && Number.isInteger(port))
        endpoints.set(`${protocol} ${addr}:${port}`, { protocol, address: addr, port });
    }
  }
  return { owned, services, endpoints: [...endpoints.values()] };
}
