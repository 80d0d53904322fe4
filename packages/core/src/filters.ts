/**
 * Which containers one handler sees: `[handler]` keys that narrow its view (docker-gen's
 * `-container-filter`, Traefik's constraints). All given keys must match; within a key, any entry:
 *
 *   only-labels   = glue.enable, tier=web     every label present (and equal, with `=`)
 *   only-names    = web-*, api-?              the container name matches one glob (`*`, `?`)
 *   only-networks = backend, front            the container is on one of these networks
 *   only-projects = shop                      its compose project (com.docker.compose.project) is one of these
 *
 * A handler with filters gets no event of a container outside them, and its agent's `containers()`
 * and `inspect()` leave such containers out: to the handler they do not exist.
 */
import type { ContainerInspectInfo } from 'dockerode';
import { containerName } from './container-store.js';
import type { Agent } from './handler.js';

export interface ContainerFilter {
  labels: ReadonlyArray<{ key: string; value?: string }>;
  names: readonly RegExp[];
  networks: readonly string[];
  projects: readonly string[];
}

export const FILTER_KEYS = ['only-labels', 'only-names', 'only-networks', 'only-projects'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];

const COMPOSE_PROJECT = 'com.docker.compose.project';
/** Docker's label keys, names, networks and compose projects, and a glob of them. */
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/;
const NAME_GLOB = /^[A-Za-z0-9*?][A-Za-z0-9_.*?-]{0,254}$/;
const NETWORK = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

const list = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

const globToRegExp = (glob: string): RegExp =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\-]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );

/**
 * The filter the `[handler]` values give (undefined when none is set), and a reason per bad key.
 * `get` reads one `[handler]` key.
 */
export function parseFilter(get: (key: FilterKey) => string | undefined): {
  filter: ContainerFilter | undefined;
  problems: Array<{ key: FilterKey; reason: string }>;
} {
  const problems: Array<{ key: FilterKey; reason: string }> = [];
  const entries = (key: FilterKey, check: RegExp, what: string): string[] => {
    const raw = get(key);
    if (raw === undefined) return [];
    const items = list(raw);
    if (items.length === 0) problems.push({ key, reason: `is empty: give one or more ${what}, comma-separated` });
    for (const item of items)
      if (!check.test(item)) problems.push({ key, reason: `${JSON.stringify(item)} is not ${what}` });
    return items.filter((i) => check.test(i));
  };
  const labels = (() => {
    const raw = get('only-labels');
    if (raw === undefined) return [];
    const items = list(raw);
    if (items.length === 0)
      problems.push({ key: 'only-labels', reason: 'is empty: give KEY or KEY=VALUE, comma-separated' });
    const out: Array<{ key: string; value?: string }> = [];
    for (const item of items) {
      const eq = item.indexOf('=');
      const key = eq === -1 ? item : item.slice(0, eq).trim();
      if (!LABEL_KEY.test(key)) {
        problems.push({ key: 'only-labels', reason: `${JSON.stringify(item)} is not KEY or KEY=VALUE (a label key)` });
        continue;
      }
      out.push(eq === -1 ? { key } : { key, value: item.slice(eq + 1).trim() });
    }
    return out;
  })();
  const names = entries('only-names', NAME_GLOB, 'a container name or a glob of one (*, ?)').map(globToRegExp);
  const networks = entries('only-networks', NETWORK, 'a network name');
  const projects = entries('only-projects', NETWORK, 'a compose project name');
  const any = FILTER_KEYS.some((k) => get(k) !== undefined);
  return { filter: any && problems.length === 0 ? { labels, names, networks, projects } : undefined, problems };
}

/** Whether `info` is in the filter's view. */
export function matchesFilter(filter: ContainerFilter, info: ContainerInspectInfo | undefined): boolean {
  if (info === undefined) return false;
  const labels = info.Config?.Labels ?? {};
  if (!filter.labels.every((l) => (l.value === undefined ? l.key in labels : labels[l.key] === l.value))) return false;
  if (filter.names.length > 0) {
    const name = containerName(info);
    if (!filter.names.some((re) => re.test(name))) return false;
  }
  if (filter.networks.length > 0) {
    const on = Object.keys(info.NetworkSettings?.Networks ?? {});
    if (!filter.networks.some((n) => on.includes(n))) return false;
  }
  if (filter.projects.length > 0 && !filter.projects.includes(labels[COMPOSE_PROJECT] ?? '')) return false;
  return true;
}

/** The agent a filtered handler gets: the same, but containers outside the filter do not exist to it. */
export function filteredAgent(agent: Agent, filter: ContainerFilter): Agent {
  const view: Agent = Object.create(agent) as Agent;
  return Object.assign(view, {
    inspect: (id: string) => {
      const info = agent.inspect(id);
      return matchesFilter(filter, info) ? info : undefined;
    },
    containers: () => agent.containers().filter((c) => matchesFilter(filter, c)),
    refresh: async (id: string) => {
      const info = await agent.refresh(id);
      return matchesFilter(filter, info) ? info : undefined;
    },
  });
}
