/**
 * The operators' label vocabulary: container labels -> routes, through one strict grammar shared by
 * every Glue handler that reads `glue_http_*`, `glue_tcp_*` and `glue_network` (the HAProxy handler,
 * the etcd publisher's HTTP index, and third-party handlers). A value that passes comes out only in a
 * shape that cannot carry a space, a quote, a `#`, a newline or anything else a config file or a key
 * path would read as syntax. A bad value drops that port's routes (or the whole container for
 * container-wide labels) and is reported as a LabelProblem naming the label, its value and why.
 */

export const DEFAULT_WEIGHT = 100;
export const MAX_WEIGHT = 256;

/** One HTTP route a container asks for: Host (+ path prefix) -> container port. */
export interface HttpRoute {
  /** Lower-cased hostname, no port. */
  host: string;
  /** `''` for the whole host, else `/seg/seg` (leading slash, no trailing slash). */
  prefix: string;
  strip: boolean;
  weight: number;
  /** The container port traffic goes to. */
  port: number;
  /** Served over HTTPS (`_tls`; implied by `_redirect_https` and `_hsts`). */
  tls: boolean;
  /** Plain HTTP answers with a permanent redirect to HTTPS (the ACME challenge path excepted). */
  redirectHttps: boolean;
  /** HTTPS answers carry Strict-Transport-Security. */
  hsts: boolean;
}

/** One TCP service: HAProxy listens on `frontendPort`, forwards to the container's `port`. */
export interface TcpRoute {
  frontendPort: number;
  port: number;
  weight: number;
}

/** One refused label: its name, its value as given and why (phrased to follow the value: "is not a port (1-65535)"). */
export interface LabelProblem {
  label: string;
  value: string;
  reason: string;
}

export interface ParsedLabels {
  http: HttpRoute[];
  tcp: TcpRoute[];
  /** `glue_udp_<port>_port`: the same shape as TCP, for kernel (nftables) balancing. */
  udp: TcpRoute[];
  /** `glue_network`: the network whose address to use, when the container names one. */
  network: string | undefined;
  problems: LabelProblem[];
  /** True when a container-wide label was bad: the container gets no route at all. */
  rejected: boolean;
}

const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const SEGMENT = /^[A-Za-z0-9._~-]{1,128}$/;
const PORT = /^[1-9][0-9]{0,4}$/;
const WEIGHT = /^[0-9]{1,3}$/;
const NETWORK = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off', '']);

/** The outcome of parsing one label value: the value, or why it was refused (phrased to follow the value). */
export type LabelResult<T> = { ok: true; value: T } | { ok: false; reason: string };
const ok = <T>(value: T): LabelResult<T> => ({ ok: true, value });
const bad = <T>(reason: string): LabelResult<T> => ({ ok: false, reason });

/**
 * A-Z to a-z, nothing else touched. String#toLowerCase maps some non-ASCII letters to ASCII (the
 * Kelvin sign U+212A becomes "k"), which would let them through the grammars below.
 */
function asciiLower(value: string): string {
  return value.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** A hostname (RFC 1123 labels), matched case-insensitively: returned lower-cased. */
export function parseHostname(value: string): LabelResult<string> {
  if (value.length === 0) return bad('is empty');
  if (value.length > 253) return bad('is longer than 253 characters');
  const host = asciiLower(value);
  const labels = host.split('.');
  for (const l of labels) {
    if (!HOST_LABEL.test(l))
      return bad('is not a hostname (letters, digits, "-" and "." only, labels of 1-63 characters, no port)');
  }
  return ok(host);
}

/** A comma list of hostnames (spaces around commas are allowed). */
export function parseHostList(value: string): LabelResult<string[]> {
  const hosts: string[] = [];
  for (const part of value.split(',')) {
    const h = parseHostname(part.replace(/^ +| +$/g, ''));
    if (!h.ok) return bad(value.includes(',') ? `${JSON.stringify(part)} ${h.reason}` : h.reason);
    if (!hosts.includes(h.value)) hosts.push(h.value);
  }
  return ok(hosts);
}

/** A path prefix, with or without the leading `/`: normalised to `/a/b` (`''` for the root). */
export function parsePrefix(value: string): LabelResult<string> {
  if (value.length > 1024) return bad('is longer than 1024 characters');
  const trimmed = value.replace(/^\//, '').replace(/\/$/, '');
  if (trimmed === '') return ok('');
  const segments = trimmed.split('/');
  for (const s of segments) {
    if (!SEGMENT.test(s))
      return bad('is not a path prefix (segments of letters, digits, ".", "_", "~", "-" separated by "/")');
    if (s === '.' || s === '..') return bad('may not contain "." or ".." segments');
  }
  return ok(`/${segments.join('/')}`);
}

export function parsePort(value: string): LabelResult<number> {
  if (!PORT.test(value)) return bad('is not a port (1-65535)');
  const n = Number(value);
  return n <= 65535 ? ok(n) : bad('is not a port (1-65535)');
}

export function parseWeight(value: string): LabelResult<number> {
  if (!WEIGHT.test(value)) return bad(`is not a weight (an integer 0-${MAX_WEIGHT})`);
  const n = Number(value);
  return n <= MAX_WEIGHT ? ok(n) : bad(`is not a weight (an integer 0-${MAX_WEIGHT})`);
}

export function parseFlag(value: string): LabelResult<boolean> {
  const v = asciiLower(value);
  if (TRUE.has(v)) return ok(true);
  if (FALSE.has(v)) return ok(false);
  return bad('is not a flag (1/true/yes/on or 0/false/no/off)');
}

export function parseNetworkName(value: string): LabelResult<string> {
  return NETWORK.test(value) ? ok(value) : bad('is not a Docker network name');
}

const HTTP_KEY = /^glue_http_([0-9]+)_(host|prefix|strip_prefix|weight|tls|redirect_https|hsts)$/;
const TCP_KEY = /^glue_tcp_([0-9]+)_(port|weight)$/;
const UDP_KEY = /^glue_udp_([0-9]+)_(port|weight)$/;

interface PortLabels {
  values: Map<string, { label: string; value: string }>;
  broken: boolean;
}

/**
 * Reads every `glue_http_*` / `glue_tcp_*` / `glue_network` label of one container. Labels of other
 * handlers are ignored. A problem in a port's labels drops only that port's routes.
 */
/** Whether any label names a route (`glue_http_*`, `glue_tcp_*`, in any case: a wrong case is reported by parseLabels). */
export function hasRouteLabels(labels: Readonly<Record<string, string>> | null | undefined): boolean {
  return Object.keys(labels ?? {}).some((k) => {
    const key = asciiLower(k);
    return key.startsWith('glue_http_') || key.startsWith('glue_tcp_') || key.startsWith('glue_udp_');
  });
}

export function parseLabels(labels: Readonly<Record<string, string>> | null | undefined): ParsedLabels {
  const out: ParsedLabels = { http: [], tcp: [], udp: [], network: undefined, problems: [], rejected: false };
  if (!labels) return out;
  const problem = (label: string, value: string, reason: string): void =>
    void out.problems.push({ label, value, reason });
  /** A port's optional label: its parsed value, `fallback` when absent, undefined (and reported) when bad. */
  const optional = <T>(
    entry: PortLabels,
    key: string,
    parse: (value: string) => LabelResult<T>,
    fallback: T,
  ): T | undefined => {
    const l = entry.values.get(key);
    if (!l) return fallback;
    const r = parse(l.value);
    if (r.ok) return r.value;
    problem(l.label, l.value, r.reason);
    return undefined;
  };
  const httpPorts = new Map<number, PortLabels>();
  const tcpPorts = new Map<number, PortLabels>();
  const udpPorts = new Map<number, PortLabels>();
  let listed: Set<number> | undefined;

  for (const [label, value] of Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (label === 'glue_network') {
      const n = parseNetworkName(value);
      if (n.ok) out.network = n.value;
      else {
        problem(label, value, n.reason);
        out.rejected = true;
      }
      continue;
    }
    if (label === 'glue_http_ports') {
      listed = new Set();
      for (const part of value.split(',')) {
        const p = parsePort(part.replace(/^ +| +$/g, ''));
        if (!p.ok) {
          problem(label, value, `${JSON.stringify(part)} ${p.reason}`);
          out.rejected = true;
          break;
        }
        listed.add(p.value);
      }
      continue;
    }
    const isHttp = label.startsWith('glue_http_');
    const isTcp = label.startsWith('glue_tcp_');
    const isUdp = label.startsWith('glue_udp_');
    if (!isHttp && !isTcp && !isUdp) {
      // Docker label keys are case-sensitive: GLUE_HTTP_80_HOST would be ignored without a word.
      if (/^glue_/.test(asciiLower(label)) && !label.startsWith('glue_'))
        problem(label, value, `label keys are lower-case: write ${asciiLower(label)}; this label is ignored`);
      continue;
    }
    const m = (isHttp ? HTTP_KEY : isTcp ? TCP_KEY : UDP_KEY).exec(label);
    const portText = m?.[1] ?? /^glue_(?:http|tcp|udp)_([0-9]+)_/.exec(label)?.[1];
    const port = portText === undefined ? undefined : parsePort(portText);
    if (!port?.ok) {
      problem(
        label,
        value,
        `unknown label: the port in its name ${portText === undefined ? 'is missing' : 'is not 1-65535'}`,
      );
      continue;
    }
    const ports = isHttp ? httpPorts : isTcp ? tcpPorts : udpPorts;
    let entry = ports.get(port.value);
    if (!entry) ports.set(port.value, (entry = { values: new Map(), broken: false }));
    if (!m) {
      problem(
        label,
        value,
        `unknown label (expected ${isHttp ? 'glue_http_<port>_host, _prefix, _strip_prefix, _weight, _tls, _redirect_https or _hsts' : isTcp ? 'glue_tcp_<port>_port or _weight' : 'glue_udp_<port>_port or _weight'})`,
      );
      entry.broken = true;
      continue;
    }
    entry.values.set(m[2] as string, { label, value });
  }
  if (out.rejected) return { ...out, http: [], tcp: [], udp: [] };

  for (const [port, entry] of [...httpPorts].sort(([a], [b]) => a - b)) {
    if (entry.broken) continue;
    const host = entry.values.get('host');
    const first = [...entry.values.values()][0];
    if (listed && !listed.has(port)) {
      if (first) problem(first.label, first.value, `port ${port} is not in glue_http_ports`);
      continue;
    }
    if (!host) {
      if (first) problem(first.label, first.value, `glue_http_${port}_host is missing: a route needs a host`);
      continue;
    }
    const hosts = parseHostList(host.value);
    if (!hosts.ok) {
      problem(host.label, host.value, hosts.reason);
      continue;
    }
    const prefix = optional(entry, 'prefix', parsePrefix, '');
    const strip = optional(entry, 'strip_prefix', parseFlag, false);
    const weight = optional(entry, 'weight', parseWeight, DEFAULT_WEIGHT);
    const tlsFlag = optional(entry, 'tls', parseFlag, undefined as boolean | undefined);
    const redirectHttps = optional(entry, 'redirect_https', parseFlag, false);
    const hsts = optional(entry, 'hsts', parseFlag, false);
    if (prefix === undefined || strip === undefined || weight === undefined) continue;
    if (redirectHttps === undefined || hsts === undefined) continue;
    if (entry.values.has('tls') && tlsFlag === undefined) continue;
    if (tlsFlag === false && (redirectHttps || hsts)) {
      const l = entry.values.get('tls')!;
      problem(
        l.label,
        l.value,
        `contradicts glue_http_${port}_${redirectHttps ? 'redirect_https' : 'hsts'}=yes, which needs HTTPS; this route is dropped`,
      );
      continue;
    }
    const tls = tlsFlag === true || redirectHttps || hsts;
    for (const h of hosts.value)
      out.http.push({ host: h, prefix, strip: strip && prefix !== '', weight, port, tls, redirectHttps, hsts });
  }
  if (listed) {
    for (const port of listed) {
      if (!httpPorts.has(port))
        problem('glue_http_ports', labels.glue_http_ports ?? '', `port ${port} has no glue_http_${port}_host label`);
    }
  }

  const streams = (ports: Map<number, PortLabels>, kind: 'tcp' | 'udp', into: TcpRoute[]): void => {
    for (const [port, entry] of [...ports].sort(([a], [b]) => a - b)) {
      if (entry.broken) continue;
      const fp = entry.values.get('port');
      const first = [...entry.values.values()][0];
      if (!fp) {
        if (first)
          problem(
            first.label,
            first.value,
            `glue_${kind}_${port}_port is missing: the port ${kind === 'tcp' ? 'HAProxy' : 'the balancer'} should listen on`,
          );
        continue;
      }
      const frontend = parsePort(fp.value);
      if (!frontend.ok) {
        problem(fp.label, fp.value, frontend.reason);
        continue;
      }
      const weight = optional(entry, 'weight', parseWeight, DEFAULT_WEIGHT);
      if (weight === undefined) continue;
      into.push({ frontendPort: frontend.value, port, weight });
    }
  };
  streams(tcpPorts, 'tcp', out.tcp);
  streams(udpPorts, 'udp', out.udp);
  return out;
}

/** True when `label` belongs to this vocabulary (`glue_http_*`, `glue_tcp_*`, `glue_network`). */
export function isGlueLabel(label: string): boolean {
  return (
    label === 'glue_network' ||
    label.startsWith('glue_http_') ||
    label.startsWith('glue_tcp_') ||
    label.startsWith('glue_udp_')
  );
}

/**
 * The one sentence every handler logs for a refused label, so operators read the same words whichever
 * handler refused it: `container web1: label glue_http_80_weight="999" is not a weight (an integer 0-256)`.
 * Handlers append what they did about it (`; that route is dropped, others are unaffected`).
 */
export function describeLabelProblem(container: string, problem: LabelProblem): string {
  return `container ${container}: label ${problem.label}=${JSON.stringify(problem.value)} ${problem.reason}`;
}
