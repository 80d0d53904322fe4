import {
  type AddressMode,
  chooseAddress,
  containerName,
  type ContainerInspectInfo,
  type LabelProblem,
  parseLabels,
  publishedEndpoint,
} from '@glue/core';
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

/**
 * `summary` (every summary field), `full` (summary plus the whole inspection) or a pick of summary
 * fields. `publishEnv` keeps `Config.Env` in the full inspection; without it (the default) the
 * environment, often holding secrets, is left out.
 */
export type FieldSelection = { mode: 'summary' | 'full'; fields: ReadonlySet<SummaryField>; publishEnv?: boolean };

export const DEFAULT_FIELDS: FieldSelection = { mode: 'summary', fields: new Set(SUMMARY_FIELDS) };

/** Parses `fields=`: `summary`, `full`, or a comma list of summary fields. */
export function parseFields(raw: string): FieldSelection {
  const value = raw.trim().toLowerCase();
  if (value === '' || value === 'summary') return DEFAULT_FIELDS;
  if (value === 'full') return { mode: 'full', fields: new Set(SUMMARY_FIELDS) };
  const picked = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = picked.filter((f) => !(SUMMARY_FIELDS as readonly string[]).includes(f));
  if (unknown.length > 0) {
    throw new Error(
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => JSON.stringify(f)).join(', ')}: use summary, full, or a comma list of ${SUMMARY_FIELDS.join(', ')}`,
    );
  }
  return { mode: 'summary', fields: new Set(picked as SummaryField[]) };
}

/** A refused container label (the grammar and the wording are @glue/core's, shared with the HAProxy handler). */
export type { LabelProblem };

/**
 * The HTTP routes of one container, by @glue/core's label grammar: exactly the routes the HAProxy
 * handler would serve (`glue_http_<port>_host` comma list, `_prefix`, `_strip_prefix`, `_weight`,
 * `glue_http_ports`, `glue_network`). A route HAProxy would refuse is not indexed either; each problem
 * names the label, its value and why. TCP labels are not indexed, so their problems are not returned.
 */
export function httpRoutes(labels: Readonly<Record<string, string>> | null | undefined): {
  routes: HttpRoute[];
  problems: LabelProblem[];
} {
  const parsed = parseLabels(labels);
  const routes = parsed.http.map((r) => ({
    port: r.port,
    vhost: r.host,
    // The record keeps its v1 shape: the prefix without its leading '/'.
    prefix: r.prefix.slice(1),
    stripPrefix: r.strip,
    weight: r.weight,
    ...(r.tls ? { tls: { redirect: r.redirectHttps, hsts: r.hsts } } : {}),
  }));
  const problems = parsed.problems.filter((p) => !p.label.startsWith('glue_tcp_'));
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
      aliases: Array.isArray(n.Aliases)
        ? (n.Aliases as unknown[]).filter((a): a is string => typeof a === 'string')
        : [],
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
        if (Number.isInteger(hostPort) && hostPort > 0)
          entry.published.push({ ip: typeof b.HostIp === 'string' ? b.HostIp : '', port: hostPort });
      }
    }
    merged.set(key, entry);
  };
  for (const spec of Object.keys(info.Config?.ExposedPorts ?? {})) add(spec, undefined);
  for (const [spec, bindings] of Object.entries((info.NetworkSettings?.Ports ?? {}) as Record<string, unknown>))
    add(spec, bindings);
  return [...merged.values()].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
}

function sortedLabels(labels: Record<string, string> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels ?? {}).sort()) out[k] = String((labels ?? {})[k]);
  return out;
}

/** The inspection as published by `fields=full`: without `Config.Env` unless `publish-env=yes`. */
function fullInspection(info: ContainerInspectInfo, publishEnv: boolean): Record<string, unknown> {
  if (publishEnv || info.Config?.Env === undefined) return info as unknown as Record<string, unknown>;
  const { Env: _env, ...config } = info.Config;
  return { ...(info as unknown as Record<string, unknown>), Config: config };
}

/** The JSON record of one container, deterministic (same inspection, same bytes). */
export function containerRecord(
  info: ContainerInspectInfo,
  host: string,
  selection: FieldSelection = DEFAULT_FIELDS,
  parsed: { routes: HttpRoute[]; problems: LabelProblem[] } = httpRoutes(info.Config?.Labels),
): ContainerRecord {
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
  if (f.has('http')) {
    record.http = parsed.routes;
    if (parsed.problems.length > 0)
      record.labelProblems = parsed.problems.map((p) => ({ label: p.label, value: p.value, reason: p.reason }));
  }
  if (selection.mode === 'full') record.inspect = fullInspection(info, selection.publishEnv === true);
  return record;
}

/** The keys and values one running container puts in etcd: its record plus one index entry per HTTP route. */
/** How index entries find their endpoint (PublisherSettings.endpoint). Default: the container's own address. */
export interface EndpointOptions {
  mode: AddressMode;
  advertise?: string | undefined;
  network?: string | undefined;
}

/**
 * The endpoint of one route in the chosen mode, or why it has none (then it is not indexed: a balancer
 * could not reach it).
 */
function endpointOf(
  info: ContainerInspectInfo,
  port: number,
  network: string | undefined,
  o: EndpointOptions,
): { address: string; port: number } | { error: string } {
  if (o.mode === 'published') return publishedEndpoint(info, port, o.advertise ?? '');
  const chosen = chooseAddress(info, network ?? o.network);
  return 'error' in chosen ? chosen : { address: chosen.ip, port };
}

export function containerEntries(
  info: ContainerInspectInfo,
  prefix: string,
  host: string,
  selection: FieldSelection = DEFAULT_FIELDS,
  endpoint: EndpointOptions = { mode: 'container' },
): { entries: Map<string, string>; problems: LabelProblem[] } {
  const parsed = httpRoutes(info.Config?.Labels);
  const { routes, problems } = parsed;
  const entries = new Map<string, string>();
  const key = containerKey(prefix, host, info.Id);
  entries.set(key, JSON.stringify(containerRecord(info, host, selection, parsed)));
  const nets = networks(info);
  const addresses: Record<string, string> = {};
  for (const [name, n] of Object.entries(nets)) if (n.ip !== '') addresses[name] = n.ip;
  const health = (info.State as { Health?: { Status?: string } } | undefined)?.Health?.Status ?? null;
  const labelNetwork = parseLabels(info.Config?.Labels).network;
  for (const r of routes) {
    const at = endpointOf(info, r.port, labelNetwork, endpoint);
    if ('error' in at) {
      problems.push({
        label: `glue_http_${r.port}_host`,
        value: r.vhost,
        reason: `not indexed (address=${endpoint.mode}): ${at.error}`,
      });
      continue;
    }
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
      ...(r.tls ? { tls: r.tls } : {}),
      addresses,
      health,
      ...(info.State?.Paused === true ? { paused: true as const } : {}),
      container: key,
      endpoint: at,
    };
    entries.set(httpKey(prefix, r.vhost, host, info.Id, r.port), JSON.stringify(entry));
  }
  return { entries, problems };
}
