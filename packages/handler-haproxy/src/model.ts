/**
 * Every container's inspection -> the balancer model: HTTP backends keyed by (host, prefix), TCP
 * services keyed by frontend port, each with its servers. Pure: the same containers always give
 * the same model (sorted), so the rendered text only changes when routing does.
 */
import { createHash } from 'node:crypto';
import {
  chooseAddress,
  type ContainerInspectInfo,
  hasRouteLabels,
  type LabelProblem,
  parseLabels,
  rotationReason,
} from '@glue/core';

export interface Server {
  /** `<container name>:<port>`: unique in its backend, stable across reloads. */
  name: string;
  address: string;
  port: number;
  weight: number;
  containerId: string;
  containerName: string;
}

export interface HttpBackend {
  /** HAProxy backend name: `http_<host>_<hash>`; only [a-z0-9._-]. */
  name: string;
  host: string;
  /** `''` or `/a/b`. */
  prefix: string;
  strip: boolean;
  servers: Server[];
}

export interface TcpService {
  /** `tcp_<port>`. */
  name: string;
  port: number;
  servers: Server[];
}

/** A host served over HTTPS (every route of the host: TLS is a property of the site, not of a path). */
export interface TlsSite {
  host: string;
  /** Plain HTTP answers 301 to https:// (the ACME challenge path excepted). */
  redirect: boolean;
  hsts: boolean;
}

export interface BalancerModel {
  /** Sorted by host, then longest prefix first: the order HAProxy tries them. */
  http: HttpBackend[];
  /** Sorted by port. */
  tcp: TcpService[];
  /** Hosts served over HTTPS, sorted by host (absent: none). */
  tls?: TlsSite[];
}

/** Why a container (or one of its routes) is not in the model. One entry per container. */
export interface SkipNote {
  containerId: string;
  containerName: string;
  /** Bad labels: container, label, value and reason each. */
  problems: LabelProblem[];
  /** Why the whole container is out of rotation (not running, paused, unhealthy, no address). */
  reason?: string;
  /** The network and address chosen, for the log. */
  address?: { network: string; ip: string; why: string };
}

export interface ModelOptions {
  /** Default network to take the address from (a `glue_network` label overrides it). */
  network?: string;
  /** TCP frontend ports labels may claim. */
  tcpPorts?: { min: number; max: number };
  /** Whether glue_tcp_* labels are this balancer's (default true; false: another handler balances them). */
  tcp?: boolean;
  /** Ports HAProxy already uses (the HTTP bind port): TCP services may not claim them. */
  reservedPorts?: readonly number[];
}

const SERVER_NAME_SAFE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function nameOf(info: ContainerInspectInfo): string {
  return (info.Name ?? '').replace(/^\//, '');
}

export function backendName(host: string, prefix: string): string {
  const hash = createHash('sha1').update(`${host}${prefix}`).digest('hex').slice(0, 8);
  return `http_${host}_${hash}`;
}

/**
 * One container as a route source resolved it: its routes, each with the address and port a server
 * sends to. Sources (the local engine, the etcd index) make candidates; one builder (buildFromCandidates)
 * makes the model from them, so grouping, conflicts, port rules and order are the same whatever the source.
 */
export interface Candidate {
  /** The source's key for the container (a Docker id; `<host>/<id>` from etcd): servers are retired by it. */
  containerId: string;
  /** How logs and conflicts name the container (`web1`; `host-a/web1` from etcd). */
  containerName: string;
  /** The server names' stem: `<stem>:<container port>`; unique per container within the source. */
  serverStem: string;
  /** Who came first (earlier start, or earlier etcd revision): lower wins a conflict on a route. */
  order: number;
  http: Array<{
    host: string;
    prefix: string;
    strip: boolean;
    weight: number;
    port: number;
    address: string;
    targetPort: number;
    tls: boolean;
    redirectHttps: boolean;
    hsts: boolean;
  }>;
  tcp: Array<{ frontendPort: number; weight: number; port: number; address: string; targetPort: number }>;
  /** Where the builder adds the problems it finds (a strip conflict, a TCP port out of range). */
  note: SkipNote;
}

/** The local engine's containers -> candidates (running, in rotation, with an address), and a note per container with route labels. */
export function dockerCandidates(
  containers: readonly ContainerInspectInfo[],
  options: Pick<ModelOptions, 'network' | 'tcp'> & {
    /** A reason to keep a running container out of rotation (it is being stopped), or undefined. */
    outOfRotation?: (containerId: string) => string | undefined;
  } = {},
): { candidates: Candidate[]; notes: SkipNote[] } {
  const notes: SkipNote[] = [];
  const candidates: Candidate[] = [];
  for (const info of containers) {
    const labels = info.Config?.Labels ?? {};
    if (!hasRouteLabels(labels)) continue;
    const cname = nameOf(info);
    const parsed = parseLabels(labels);
    // UDP services are the kernel balancer's (@glue/handler-nftables): neither routed nor reported here.
    // UDP services (and TCP with tcp-ports=none) are another balancer's: neither routed nor reported here.
    const tcp = options.tcp === false ? [] : parsed.tcp;
    const problems = parsed.problems.filter(
      (p) => !p.label.startsWith('glue_udp_') && (options.tcp !== false || !p.label.startsWith('glue_tcp_')),
    );
    if (parsed.http.length === 0 && tcp.length === 0 && problems.length === 0 && !parsed.rejected) continue;
    const note: SkipNote = { containerId: info.Id, containerName: cname, problems: [] };
    notes.push(note);
    note.problems.push(...problems);
    if (parsed.rejected) {
      note.reason = 'a container-wide label is invalid';
      continue;
    }
    if (parsed.http.length === 0 && tcp.length === 0) {
      note.reason = 'no valid route';
      continue;
    }
    const out = rotationReason(info) ?? options.outOfRotation?.(info.Id);
    if (out) {
      note.reason = out;
      continue;
    }
    if (!SERVER_NAME_SAFE.test(cname)) {
      note.reason = `container name ${JSON.stringify(cname)} cannot name a HAProxy server`;
      continue;
    }
    const addr = chooseAddress(info, parsed.network ?? options.network);
    if ('error' in addr) {
      note.reason = addr.error;
      continue;
    }
    note.address = addr;
    candidates.push({
      containerId: info.Id,
      containerName: cname,
      serverStem: cname,
      // Longest running first: where containers disagree on a route (strip_prefix), the one that has
      // been serving it longest decides and a newcomer is refused, whatever its name.
      order: Date.parse(info.State?.StartedAt ?? '') || 0,
      http: parsed.http.map((r) => ({ ...r, address: addr.ip, targetPort: r.port })),
      tcp: tcp.map((r) => ({ ...r, address: addr.ip, targetPort: r.port })),
      note,
    });
  }
  return { candidates, notes };
}

/** The model from every container the local engine reports (dockerCandidates, then buildFromCandidates). */
export function buildModel(
  containers: readonly ContainerInspectInfo[],
  options: ModelOptions = {},
): { model: BalancerModel; notes: SkipNote[] } {
  const { candidates, notes } = dockerCandidates(containers, options);
  return { model: buildFromCandidates(candidates, options), notes };
}

/** Candidates of any source -> the model. Pure: the same candidates in any order give the same model. */
export function buildFromCandidates(candidates: readonly Candidate[], options: ModelOptions = {}): BalancerModel {
  const http = new Map<string, HttpBackend>();
  const tcp = new Map<number, TcpService>();
  /** How each host is served (TLS, redirect, HSTS) and the container that decided it. */
  const sites = new Map<string, { site: TlsSite | undefined; by: string; key: string }>();
  const range = options.tcpPorts ?? { min: 1024, max: 65535 };
  const reserved = new Set(options.reservedPorts ?? []);
  // Ties (and inspections without StartedAt) by name, then id, so the same containers always give the same model.
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  const sorted = [...candidates].sort(
    (a, b) => a.order - b.order || cmp(a.containerName, b.containerName) || cmp(a.containerId, b.containerId),
  );
  for (const c of sorted) {
    const note = c.note;
    const server = (r: { port: number; weight: number; address: string; targetPort: number }): Server => ({
      name: `${c.serverStem}:${r.port}`,
      address: r.address,
      port: r.targetPort,
      weight: r.weight,
      containerId: c.containerId,
      containerName: c.containerName,
    });
    for (const r of c.http) {
      const tlsKey = siteKey(r);
      const decided = sites.get(r.host);
      if (decided && decided.key !== tlsKey) {
        const [label, value] =
          r.tls !== (decided.site !== undefined)
            ? ['tls', r.tls]
            : r.redirectHttps !== decided.site?.redirect
              ? ['redirect_https', r.redirectHttps]
              : ['hsts', r.hsts];
        note.problems.push({
          label: `glue_http_${r.port}_${label}`,
          value: String(value),
          reason: `${r.host} is already served ${decided.key} by ${decided.by}, which has been running longer (every route of a host is served the same way)`,
        });
        continue;
      }
      const key = `${r.host}\0${r.prefix}`;
      let be = http.get(key);
      if (!be)
        http.set(
          key,
          (be = { name: backendName(r.host, r.prefix), host: r.host, prefix: r.prefix, strip: r.strip, servers: [] }),
        );
      else if (be.strip !== r.strip) {
        note.problems.push({
          label: `glue_http_${r.port}_strip_prefix`,
          value: String(r.strip),
          reason: `${r.host}${r.prefix} is already served ${be.strip ? 'with' : 'without'} prefix stripping by ${be.servers[0]?.containerName ?? 'another container'}, which has been running longer; this route is dropped`,
        });
        continue;
      }
      const s = server(r);
      if (!be.servers.some((x) => x.name === s.name)) be.servers.push(s);
      if (!decided)
        sites.set(r.host, {
          site: r.tls ? { host: r.host, redirect: r.redirectHttps, hsts: r.hsts } : undefined,
          by: c.containerName,
          key: tlsKey,
        });
    }
    for (const r of c.tcp) {
      const label = `glue_tcp_${r.port}_port`;
      if (r.frontendPort < range.min || r.frontendPort > range.max) {
        note.problems.push({
          label,
          value: String(r.frontendPort),
          reason: `frontend port is outside the allowed range ${range.min}-${range.max} (param tcp-ports)`,
        });
        continue;
      }
      if (reserved.has(r.frontendPort)) {
        note.problems.push({
          label,
          value: String(r.frontendPort),
          reason: 'frontend port is already used by the HTTP frontend',
        });
        continue;
      }
      let svc = tcp.get(r.frontendPort);
      if (!svc) tcp.set(r.frontendPort, (svc = { name: `tcp_${r.frontendPort}`, port: r.frontendPort, servers: [] }));
      svc.servers.push(server(r));
    }
  }
  const byServer = (a: Server, b: Server): number => cmp(a.name, b.name);
  const backends = [...http.values()].sort((a, b) =>
    a.host !== b.host
      ? a.host < b.host
        ? -1
        : 1
      : b.prefix.length - a.prefix.length || (a.prefix < b.prefix ? -1 : 1),
  );
  for (const b of backends) b.servers.sort(byServer);
  const services = [...tcp.values()].sort((a, b) => a.port - b.port);
  for (const s of services) s.servers.sort(byServer);
  const tls = [...sites.values()].flatMap((d) => (d.site ? [d.site] : [])).sort((a, b) => cmp(a.host, b.host));
  return tls.length > 0 ? { http: backends, tcp: services, tls } : { http: backends, tcp: services };
}

/** How a route wants its host served, as a phrase: `over HTTP only`, `over HTTPS with a redirect and HSTS`. */
function siteKey(r: { tls: boolean; redirectHttps: boolean; hsts: boolean }): string {
  if (!r.tls) return 'over HTTP only';
  const extras = [r.redirectHttps ? 'a redirect from HTTP' : '', r.hsts ? 'HSTS' : ''].filter(Boolean);
  return `over HTTPS${extras.length > 0 ? ` with ${extras.join(' and ')}` : ''}`;
}

/** What needs a reload when it changes: frontends, backends and their options, not servers. */
export function structureKey(model: BalancerModel): string {
  return JSON.stringify({
    http: model.http.map((b) => [b.name, b.host, b.prefix, b.strip]),
    tcp: model.tcp.map((s) => [s.name, s.port]),
  });
}

/** A TLS map value: `tls`, `tls-redirect`, `tls-hsts` or `tls-redirect-hsts`. */
export function tlsFlags(site: TlsSite): string {
  return `tls${site.redirect ? '-redirect' : ''}${site.hsts ? '-hsts' : ''}`;
}

/** The TLS map file: `<host> <flags>` per HTTPS host, sorted by host (the model's order). */
export function tlsMapFileText(sites: readonly TlsSite[]): string {
  return sites.map((t) => `${t.host} ${tlsFlags(t)}\n`).join('');
}
