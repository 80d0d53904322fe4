/**
 * What the kernel balances, as plain data: services (protocol + listen port) and their endpoints
 * (address, port, weight). Pure. A source turns containers into candidates (the local engine here;
 * a cluster source can turn index entries into the same candidates), and `buildServices` makes the
 * model from candidates of any source, so the rules do not depend on where containers come from.
 */
import {
  chooseAddress,
  type ContainerInspectInfo,
  containerName,
  type LabelProblem,
  parseLabels,
  rotationReason,
  type TcpRoute,
} from '@glue/core';
import type { L4Protocol } from './params.js';

/** One service a container asks for: `protocol` traffic to the listen `port` goes to its `targetPort`. */
export interface L4Route {
  protocol: L4Protocol;
  port: number;
  targetPort: number;
  weight: number;
}

/** A container as a source resolved it: an address and its routes. */
export interface L4Candidate {
  /** The source's key for the container (a Docker id; `<host>/<id>` from a cluster index). */
  id: string;
  /** How rules and logs name it. */
  name: string;
  /** IPv4, checked. */
  address: string;
  routes: L4Route[];
}

export interface L4Endpoint {
  id: string;
  name: string;
  address: string;
  port: number;
  /** 0-256; 0 takes no new flows but keeps its existing ones. */
  weight: number;
}

export interface L4Service {
  protocol: L4Protocol;
  port: number;
  /** By id: the same containers always give the same rules. */
  endpoints: L4Endpoint[];
}

export interface L4Model {
  /** By protocol, then port. */
  services: L4Service[];
}

/** A container left out, or with labels refused: what the handler logs once. */
export interface SkipNote {
  containerId: string;
  containerName: string;
  problems: LabelProblem[];
  /** Why the container has no endpoint at all (not running, no address...), if it has none. */
  reason?: string;
}

export interface CandidateOptions {
  network?: string | undefined;
  protocols: readonly L4Protocol[];
  ports: { min: number; max: number };
  /** A reason to keep a running container out (it is being stopped), or undefined. */
  outOfRotation?: (id: string) => string | undefined;
}

const prefixOf = (p: L4Protocol): string => `glue_${p}_`;

/** The local engine's containers -> candidates, with a note for each container whose labels were refused or left out. */
export function dockerCandidates(
  containers: readonly ContainerInspectInfo[],
  options: CandidateOptions,
): { candidates: L4Candidate[]; notes: SkipNote[] } {
  const candidates: L4Candidate[] = [];
  const notes: SkipNote[] = [];
  const ours = options.protocols.map(prefixOf);
  for (const info of containers) {
    const labels = info.Config?.Labels ?? {};
    if (!Object.keys(labels).some((l) => ours.some((p) => l.startsWith(p)))) continue;
    const name = containerName(info) || info.Id.slice(0, 12);
    const parsed = parseLabels(labels);
    const note: SkipNote = {
      containerId: info.Id,
      containerName: name,
      problems: parsed.problems.filter((p) => ours.some((o) => p.label.startsWith(o)) || p.label === 'glue_network'),
    };
    const routes: L4Route[] = [];
    const take = (protocol: L4Protocol, list: readonly TcpRoute[]): void => {
      if (!options.protocols.includes(protocol)) return;
      for (const r of list) {
        const { min, max } = options.ports;
        if (r.frontendPort < min || r.frontendPort > max) {
          note.problems.push({
            label: `glue_${protocol}_${r.port}_port`,
            value: String(r.frontendPort),
            reason: `is outside the listen ports ${min}-${max} (param ports)`,
          });
          continue;
        }
        routes.push({ protocol, port: r.frontendPort, targetPort: r.port, weight: r.weight });
      }
    };
    take('udp', parsed.udp);
    take('tcp', parsed.tcp);
    const skip = (reason: string): void => {
      note.reason = reason;
      notes.push(note);
    };
    if (parsed.rejected) {
      skip('a container-wide label is invalid');
      continue;
    }
    if (routes.length === 0) {
      skip('no valid service');
      continue;
    }
    const out = rotationReason(info) ?? options.outOfRotation?.(info.Id);
    if (out) {
      skip(out);
      continue;
    }
    const addr = chooseAddress(info, parsed.network ?? options.network);
    if ('error' in addr) {
      skip(addr.error);
      continue;
    }
    if (note.problems.length > 0) notes.push(note);
    candidates.push({ id: info.Id, name, address: addr.ip, routes });
  }
  return { candidates, notes };
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Candidates of any source -> services. Pure: the same candidates in any order give the same model. */
export function buildServices(candidates: readonly L4Candidate[]): L4Model {
  const services = new Map<string, L4Service>();
  for (const c of candidates) {
    for (const r of c.routes) {
      const key = `${r.protocol}/${r.port}`;
      let svc = services.get(key);
      if (!svc) services.set(key, (svc = { protocol: r.protocol, port: r.port, endpoints: [] }));
      if (svc.endpoints.some((e) => e.id === c.id && e.port === r.targetPort)) continue;
      svc.endpoints.push({ id: c.id, name: c.name, address: c.address, port: r.targetPort, weight: r.weight });
    }
  }
  const list = [...services.values()];
  for (const s of list) s.endpoints.sort((a, b) => cmp(a.id, b.id) || a.port - b.port);
  list.sort((a, b) => cmp(a.protocol, b.protocol) || a.port - b.port);
  return { services: list };
}

/** `udp 10.0.0.2:53`: an endpoint as conntrack and logs know it. */
export interface Flowpoint {
  protocol: L4Protocol;
  address: string;
  port: number;
}

export const flowKey = (f: Flowpoint): string => `${f.protocol} ${f.address}:${f.port}`;

/** Every endpoint of the model as protocol, address and port. */
export function flowpoints(model: L4Model): Flowpoint[] {
  const seen = new Map<string, Flowpoint>();
  for (const s of model.services)
    for (const e of s.endpoints) {
      const f = { protocol: s.protocol, address: e.address, port: e.port };
      seen.set(flowKey(f), f);
    }
  return [...seen.values()];
}
