/**
 * What one handler owns alone among the loaded ones: two handlers that claim the same thing (both
 * HAProxy and nftables balancing `glue_tcp_*` labels, so one port would be served twice) are a
 * configuration error naming both, found before anything starts. Pure.
 */
import type { ConfigProblem } from './errors.js';
import type { Handler } from './handler.js';

/** One claim: what is owned (`glue_tcp_<port>_port labels`) and the `[params]` key that made it. */
export interface HandlerClaim {
  what: string;
  key: string;
}

interface Claimant {
  name: string;
  file: string | undefined;
  instance: Handler;
}

/** The `[params]` line of a claim's key, when the handler keeps its INI document (BaseHandler does). */
function lineOf(instance: Handler, key: string): number | undefined {
  const ini = (instance as { ini?: { lineOf?: (section: string, key: string) => number | undefined } }).ini;
  return typeof ini?.lineOf === 'function' ? ini.lineOf('params', key) : undefined;
}

/** A problem for every claim a later handler makes on what an earlier one already claimed. */
export function claimProblems(handlers: readonly Claimant[]): ConfigProblem[] {
  const owners = new Map<string, { handler: Claimant; claim: HandlerClaim }>();
  const problems: ConfigProblem[] = [];
  for (const h of handlers) {
    for (const claim of h.instance.claims ?? []) {
      const first = owners.get(claim.what);
      if (!first) {
        owners.set(claim.what, { handler: h, claim });
        continue;
      }
      if (first.handler === h) continue;
      problems.push({
        file: h.file ?? h.name,
        section: 'params',
        key: claim.key,
        line: lineOf(h.instance, claim.key),
        message: `${claim.what} are claimed by both ${first.handler.name} ([params] ${first.claim.key}) and ${h.name} ([params] ${claim.key}): one port must be balanced by one handler; change one of the two`,
      });
    }
  }
  return problems;
}
