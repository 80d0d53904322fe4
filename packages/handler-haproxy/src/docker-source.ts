import { type Agent, StoppingContainers } from '@glue/core';
import { dockerCandidates } from './model.js';
import type { RouteSource } from './source.js';

/**
 * The local engine's containers, as Glue's agent knows them. Changes arrive as handler events, not here;
 * those events also tell which containers are being stopped (core's StoppingContainers): they leave rotation first.
 */
export function dockerSource(agent: Agent, network: string | undefined, tcp = true): RouteSource {
  const stopping = new StoppingContainers();
  return {
    kind: 'docker',
    start: () => Promise.resolve(),
    read: () =>
      dockerCandidates(agent.containers(), {
        ...(network ? { network } : {}),
        tcp,
        outOfRotation: (id) => stopping.reason(id),
      }),
    observe: (event, container) => void stopping.observe(event, container),
    alive: (id) => agent.inspect(id)?.State?.Running === true,
    stop: () => Promise.resolve(),
  };
}
