/**
 * Which running containers get traffic: Glue's own view of running, paused, healthy and stopping
 * containers, the same for every balancer (HAProxy, nftables). A container is in rotation when it runs,
 * is not paused, its health check (if any) says healthy, and no stop signal was sent to it.
 *
 * Containers being stopped: `docker stop` sends the container's stop signal (a `kill` event with
 * `signal=15` for the default SIGTERM), waits, then SIGKILLs it. From the first of those signals the
 * container leaves rotation, while its app may still finish the requests it has: no new request
 * reaches a container that is shutting down, and it is removed at `die` as before. A `kill` with any
 * other signal (`docker kill -s HUP` to reload an app) changes nothing.
 */
import { constants } from 'node:os';
import type { ContainerInspectInfo } from 'dockerode';
import type { GlueEvent } from './events.js';

/** SIGTERM, SIGINT, SIGQUIT and SIGKILL end a process unless it says otherwise. */
const ENDING = new Set(['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGKILL'].map((s) => signalNumber(s)));

/** `15`, `SIGTERM` or `TERM` -> 15; undefined for anything else. */
export function signalNumber(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toUpperCase();
  if (/^\d{1,2}$/.test(v)) return Number(v);
  const name = v.startsWith('SIG') ? v : `SIG${v}`;
  return (constants.signals as Record<string, number | undefined>)[name];
}

/** Why a container is out of rotation by its state (not running, paused, health check), or undefined. */
export function rotationReason(info: ContainerInspectInfo): string | undefined {
  const s = info.State;
  if (!s?.Running) return 'not running';
  if (s.Paused) return 'paused';
  const health = (s as { Health?: { Status?: string } }).Health?.Status;
  if (health === 'unhealthy' || health === 'starting') return `health check says ${health}`;
  return undefined;
}

export class StoppingContainers {
  /** Container id -> the signal that put it here. */
  private readonly ids = new Map<string, number>();

  /** Learns from one event; true when the container's membership changed. */
  observe(event: GlueEvent, container: ContainerInspectInfo | undefined): boolean {
    const { action, id } = event;
    if (!id) return false;
    if (action === 'kill') {
      const signal = signalNumber(event.attributes.signal);
      const own = signalNumber((container?.Config as { StopSignal?: string } | undefined)?.StopSignal);
      if (signal === undefined || (!ENDING.has(signal) && signal !== own) || this.ids.has(id)) return false;
      this.ids.set(id, signal);
      return true;
    }
    // Running again, or gone: not stopping any more.
    if (['start', 'restart', 'unpause', 'die', 'destroy'].includes(action)) return this.ids.delete(id);
    return false;
  }

  /** Why the container is out of rotation, if it is being stopped. */
  reason(id: string): string | undefined {
    const signal = this.ids.get(id);
    return signal === undefined ? undefined : `stopping (sent signal ${signal}): draining`;
  }
}
