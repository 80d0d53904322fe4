import type { Agent } from '@glue/core';
import { dockerCandidates } from './model.js';
import type { RouteSource } from './source.js';

/** The local engine's containers, as Glue's agent knows them. Changes arrive as handler events, not here. */
export function dockerSource(agent: Agent, network: string | undefined): RouteSource {
  return {
    kind: 'docker',
    start: () => Promise.resolve(),
    read: () => dockerCandidates(agent.containers(), network ? { network } : {}),
    alive: (id) => agent.inspect(id)?.State?.Running === true,
    stop: () => Promise.resolve(),
  };
}
