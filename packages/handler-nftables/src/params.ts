/**
 * The `[params]` of the nftables handler, read by core's rules: every bad key reported at once, and
 * only values of a closed grammar (IPv4 addresses, a table name of letters, digits and `_`, integers)
 * ever reach the nft script.
 */
import { isIPv4 } from 'node:net';
import { checkParams, param, type ParamProblem, type ParamRule, parseNetworkName, quote } from '@glue/core';

export type L4Protocol = 'udp' | 'tcp';
export type Family = 'ip' | 'inet';

export interface NftParams {
  /** Addresses the services answer on; `local`: every local address of this network namespace but loopback. */
  listen: readonly string[] | 'local';
  table: string;
  family: Family;
  /** Source NAT to the host's address for balanced flows (backends whose replies would not pass this host). */
  masquerade: boolean;
  network: string | undefined;
  /** Which label families this handler balances: `glue_udp_*` always unless dropped, `glue_tcp_*` when chosen. */
  protocols: readonly L4Protocol[];
  /** Listen ports labels may claim. */
  ports: { min: number; max: number };
  /** Delete the table when Glue stops (default: the rules stay and traffic keeps flowing). */
  removeOnStop: boolean;
  /** Take over a table of this name that Glue did not make (it is replaced). */
  takeover: boolean;
  nft: string;
  conntrack: string;
  timeoutMs: number;
  /** How often the kernel's table is read back and rewritten whole if it drifted (ms; 0: never). */
  reconcileIntervalMs: number;
}

const TABLE = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;
const BINARY = /^[^\s'"\\;|&$`<>]+$/;

const listen: ParamRule<readonly string[] | 'local'> = (raw) => {
  if (raw === undefined || raw === 'local') return { ok: true, value: 'local' };
  const reasons: string[] = [];
  const addresses: string[] = [];
  for (const part of raw.split(',').map((p) => p.trim())) {
    if (!isIPv4(part)) reasons.push(`${quote(part, 40)} is not an IPv4 address (or use local)`);
    else if (part.startsWith('127.'))
      reasons.push(`${part} is a loopback address: the kernel does not forward its packets to a container`);
    else if (part === '0.0.0.0') reasons.push('0.0.0.0 is not an address to listen on (use local for every address)');
    else if (!addresses.includes(part)) addresses.push(part);
  }
  return reasons.length > 0 ? { ok: false, reason: reasons } : { ok: true, value: addresses };
};

const protocols: ParamRule<readonly L4Protocol[]> = (raw) => {
  if (raw === undefined) return { ok: true, value: ['udp'] };
  const parts = raw.split(',').map((p) => p.trim().toLowerCase());
  const bad = parts.filter((p) => p !== 'udp' && p !== 'tcp');
  if (bad.length > 0 || parts.length === 0)
    return { ok: false, reason: `${quote(raw, 40)} is not udp, tcp or udp,tcp` };
  return { ok: true, value: (['udp', 'tcp'] as const).filter((p) => parts.includes(p)) };
};

const portRange: ParamRule<{ min: number; max: number }> = (raw) => {
  const m = /^([0-9]{1,5})-([0-9]{1,5})$/.exec(raw ?? '1-65535');
  const min = Number(m?.[1]);
  const max = Number(m?.[2]);
  if (!m || min < 1 || max > 65535 || min > max)
    return { ok: false, reason: `${quote(raw ?? '', 40)} is not a port range like 1-65535` };
  return { ok: true, value: { min, max } };
};

const SPEC = {
  listen,
  table: param.string({
    default: 'glue',
    pattern: TABLE,
    describe: 'a table name (a letter, then letters, digits, _)',
  }),
  family: param.oneOf(['ip', 'inet'] as const, 'ip'),
  masquerade: param.boolean(false),
  network: param.check((v) => {
    const r = parseNetworkName(v);
    return r.ok ? undefined : r.reason;
  }),
  protocols,
  ports: portRange,
  'remove-on-stop': param.boolean(false),
  takeover: param.boolean(false),
  nft: param.string({ default: 'nft', pattern: BINARY, describe: 'a program path' }),
  conntrack: param.string({ default: 'conntrack', pattern: BINARY, describe: 'a program path' }),
  timeout: param.number({ default: 10, min: 1, max: 300, unit: 'seconds', scale: 1000 }),
  'reconcile-interval': param.number({ default: 60, min: 0, max: 86_400, unit: 'seconds', scale: 1000 }),
};

/** The `[params]` keys this handler reads. */
export const PARAM_KEYS: readonly string[] = Object.keys(SPEC);

/** `[params]` -> settings, and one problem per bad or unknown key. */
export function parseParams(raw: Readonly<Record<string, string>>): { params: NftParams; problems: ParamProblem[] } {
  const { values: v, problems } = checkParams(raw, SPEC);
  return {
    params: {
      listen: v.listen ?? 'local',
      table: v.table ?? 'glue',
      family: v.family ?? 'ip',
      masquerade: v.masquerade ?? false,
      network: v.network,
      protocols: v.protocols ?? ['udp'],
      ports: v.ports ?? { min: 1, max: 65535 },
      removeOnStop: v['remove-on-stop'] ?? false,
      takeover: v.takeover ?? false,
      nft: v.nft ?? 'nft',
      conntrack: v.conntrack ?? 'conntrack',
      timeoutMs: v.timeout ?? 10_000,
      reconcileIntervalMs: v['reconcile-interval'] ?? 60_000,
    },
    problems,
  };
}
