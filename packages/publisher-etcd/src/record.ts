import { containerName, type ContainerInspectInfo } from '@glue/core';
import { containerKey, httpKey } from './keys.js';
import {
  type ContainerRecord,
  type HttpEntry,
  type HttpRoute,
  type NetworkInfo,
  type PortInfo,
  RECORD_VERSION,
} from './schema.js';

/** Fields of the summary that `fields=` can pick. `id`, `host` and `v` are always there. */
export const SUMMARY_FIELDS = ['name', 'image', 'labels', 'state', 'health', 'networks', 'ports', 'http'] as const;
export type SummaryField = (typeof SUMMARY_FIELDS)[number];

/** `summary` (every summary field), `full` (summary plus the whole inspection) or a pick of summary fields. */
export type FieldSelection = { mode: 'summary' | 'full'; fields: ReadonlySet<SummaryField> };

export const DEFAULT_FIELDS: FieldSelection = { mode: 'summary', fields: new Set(SUMMARY_FIELDS) };

/** Parses `fields=`: `summary`, `full`, or a comma list of summary fields. */
export function parseFields(raw: string): FieldSelection {
  const value = raw.trim().toLowerCase();
  if (value === '' || value === 'summary') return DEFAULT_FIELDS;
  if (value === 'full') return { mode: 'full', fields: new Set(SUMMARY_FIELDS) };
  const picked = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = picked.filter((f) => !(SUMMARY_FIELDS as readonly string[]).includes(f));
  if (unknown.length > 0) {
    throw new Error(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => JSON.stringify(f)).join(', ')}: use summary, full, or a comma list of ${SUMMARY_FIELDS.join(', ')}`);
  }
  return { mode: 'summary', fields: new Set(picked as SummaryField[]) };
}

/** A problem with one container label: the container is still published, only that route is left out. */
export interface LabelProblem {
  label: string;
  value: string;
  reason: string;
}

const HOSTNAME = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const PATH_PREFIX = /^[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/;

/** Reads `glue_http_<port>_host` (comma list), `_prefix`, `_strip_prefix`, `_weight` labels, strictly. */
export function httpRoutes(labels: Record<string, string> | null | undefined): { routes: HttpRoute[]; problems: LabelProblem[] } {
  const routes: HttpRoute[] = [];
  const problems: LabelProblem[] = [];
  const all = labels ?? {};
  const ports = new Set<string>();
  for (const label of Object.keys(all)) {
    const m = /^glue_http_([^_]+)_(host|prefix|strip_prefix|weight)$/.exec(label);
    if (m?.[1] !== undefined) ports.add(m[1]);
  }
  for (const rawPort of [...ports].sort()) {
    const hostLabel = `glue_http_${rawPort}_host`;
    const hostValue = all[hostLabel];
    if (hostValue === undefined) continue; // prefix/weight without a host: nothing to route
    const port = Number(rawPort);
    if (!/^\d{1,5}$/.test(rawPort) || port < 1 || port > 65535) {
      problems.push({ label: hostLabel, value: hostValue, reason: `port ${JSON.stringify(rawPort)} is not a number from 1 to 65535` });
      continue;
    }
    const prefixLabel = `glue_http_${rawPort}_prefix`;
    const rawPrefix = (all[prefixLabel] ?? '').trim();
    if (rawPrefix.length > 1024 || !PATH_PREFIX.test(rawPrefix)) {
      problems.push({ label: prefixLabel, value: rawPrefix, reason: 'not a URL path prefix (letters, digits and -._~!$&\'()*+,;=:@%/ only)' });
      continue;
    }
    const stripLabel = `glue_http_${rawPort}_strip_prefix`;
    const rawStrip = (all[stripLabel] ?? '0').trim().toLowerCase();
    if (!['0', '1', 'true', 'false', 'yes', 'no', ''].includes(rawStrip)) {
      problems.push({ label: stripLabel, value: rawStrip, reason: 'must be 1 or 0' });
      continue;
    }
    const weightLabel = `glue_http_${rawPort}_weight`;
    const rawWeight = (all[weightLabel] ?? '100').trim();
    const weight = Number(rawWeight);
    if (!/^\d{1,3}$/.test(rawWeight) || weight > 256) {
      problems.push({ label: weightLabel, value: rawWeight, reason: 'must be a whole number from 0 to 256' });
      continue;
    }
    const vhosts = hostValue.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    if (vhosts.length === 0) {
      problems.push({ label: hostLabel, value: hostValue, reason: 'empty host name' });
      continue;
    }
    for (const vhost of vhosts) {
      if (vhost.length > 253 || !HOSTNAME.test(vhost)) {
        problems.push({ label: hostLabel, value: hostValue, reason: `${JSON.stringify(vhost)} is not a DNS host name` });
        continue;
      }
      routes.push({
        port,
        vhost,
        prefix: rawPrefix.replace(/^\/+/, ''),
        stripPrefix: ['1', 'true', 'yes'].includes(rawStrip),
        weight,
      });
    }
  }
  return { routes, problems };
}

/** Published while the engine says it runs (paused included: it keeps its addresses). */
export function isPublished(info: ContainerInspectInfo | undefined): info is ContainerInspectInfo {
  return info?.State?.Running === true;
}

function networks(info: ContainerInspectInfo): Record<string, NetworkInfo> {
  const out: Record<string, NetworkInfo> = {};
  const nets = (info.NetworkSettings?.Networks ?? {}) as Record<string, Record<string, unknown> | undefined>;
  for (const name of Object.keys(nets).sort()) {
    const n = nets[name] ?? {};
    const str = (v: unknown): string => (typeof v === 'string' ? v : '');
    out[name] = {
      ip: str(n.IPAddress),
      prefixLen: typeof n.IPPrefixLen === 'number' ? n.IPPrefixLen : 0,
      gateway: str(n.Gateway),
      ipv6: str(n.GlobalIPv6Address),
      mac: str(n.MacAddress),
      aliases: Array.isArray(n.Aliases) ? (n.Aliases as unknown[]).filter((a): a is string => typeof a === 'string') : [],
    };
  }
  return out;
}

function ports(info: ContainerInspectInfo): PortInfo[] {
  const merged = new Map<string, PortInfo>();
  const add = (spec: string, bindings: unknown): void => {
    const m = /^(\d{1,5})(?:\/([a-z]+))?$/.exec(spec);
    if (!m) return;
    const port = Number(m[1]);
    if (port < 1 || port > 65535) return;
    const key = `${port}/${m[2] ?? 'tcp'}`;
    const entry = merged.get(key) ?? { port, protocol: m[2] ?? 'tcp', published: [] };
    if (Array.isArray(bindings)) {
      for (const b of bindings as Array<{ HostIp?: unknown; HostPort?: unknown }>) {
        const hostPort = Number(b.HostPort);
        if (Number.isInteger(hostPort) && hostPort > 0) entry.published.push({ ip: typeof b.HostIp === 'string' ? b.HostIp : '', port: hostPort });
      }
    }
    merged.set(key, entry);
  };
  for (const spec of Object.keys((info.Config?.ExposedPorts ?? {}) as Record<string, unknown>)) add(spec, undefined);
  for (const [spec, bindings] of Object.entries((info.NetworkSettings?.Ports ?? {}) as Record<string, unknown>)) add(spec, bindings);
  return [...merged.values()].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
}

function sortedLabels(labels: Record<string, string> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels ?? {}).sort()) out[k] = String((labels ?? {})[k]);
  return out;
}

/** The JSON record of one container, deterministic (same inspection, same bytes). */
export function containerRecord(info: ContainerInspectInfo, host: string, selection: FieldSelection = DEFAULT_FIELDS, routes?: HttpRoute[]): ContainerRecord {
  const f = selection.fields;
  const record: ContainerRecord = { v: RECORD_VERSION, host, id: info.Id };
  if (f.has('name')) record.name = containerName(info);
  if (f.has('image')) {
    record.image = info.Config?.Image ?? '';
    record.imageId = info.Image ?? '';
  }
  if (f.has('labels')) record.labels = sortedLabels(info.Config?.Labels);
  const s = info.State;
  if (f.has('state')) {
    record.state = {
      status: s?.Status ?? '',
      running: s?.Running === true,
      paused: s?.Paused === true,
      restarting: s?.Restarting === true,
      pid: typeof s?.Pid === 'number' ? s.Pid : 0,
      startedAt: s?.StartedAt ?? '',
    };
  }
  if (f.has('health')) record.health = (s as { Health?: { Status?: string } } | undefined)?.Health?.Status ?? null;
  if (f.has('networks')) record.networks = networks(info);
  if (f.has('ports')) record.ports = ports(info);
  if (f.has('http')) record.http = routes ?? httpRoutes(info.Config?.Labels).routes;
  if (selection.mode === 'full') record.inspect = info as unknown as Record<string, unknown>;
  return record;
}

/** The keys and values one running container puts in etcd: its record plus one index entry per HTTP route. */
export function containerEntries(
  info: ContainerInspectInfo,
  prefix: string,
  host: string,
  selection: FieldSelection = DEFAULT_FIELDS,
): { entries: Map<string, string>; problems: LabelProblem[] } {
  const { routes, problems } = httpRoutes(info.Config?.Labels);
  const entries = new Map<string, string>();
  const key = containerKey(prefix, host, info.Id);
  entries.set(key, JSON.stringify(containerRecord(info, host, selection, routes)));
  const nets = networks(info);
  const addresses: Record<string, string> = {};
  for (const [name, n] of Object.entries(nets)) if (n.ip !== '') addresses[name] = n.ip;
  const health = (info.State as { Health?: { Status?: string } } | undefined)?.Health?.Status ?? null;
  for (const r of routes) {
    const entry: HttpEntry = {
      v: RECORD_VERSION,
      host,
      id: info.Id,
      name: containerName(info),
      vhost: r.vhost,
      port: r.port,
      prefix: r.prefix,
      stripPrefix: r.stripPrefix,
      weight: r.weight,
      addresses,
      health,
      container: key,
    };
    entries.set(httpKey(prefix, r.vhost, host, info.Id, r.port), JSON.stringify(entry));
  }
  return { entries, problems };
}
