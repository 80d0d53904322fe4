/**
 * TCP frontends whose port cannot be bound. `haproxy -c` does not bind, so a `glue_tcp_<p>_port`
 * value that is valid but already in use on the host passes the check and only fails the reload; every
 * later config would carry the same frontend and fail the same way, freezing every routing update.
 * The guard leaves such a service out (one warning naming the containers, the label and value, and
 * why), so the other routes are applied, and takes it back once the port is free again.
 *
 * Two ways in: a bind probe of new ports (ports the running HAProxy does not bind yet) before a
 * reload, and HAProxy's own "cannot bind socket" alert when a reload fails anyway.
 */
import { createServer } from 'node:net';
import type { Logger } from '@glue/core';
import type { BalancerModel, TcpService } from './model.js';

/** One "cannot bind socket" alert of a failed reload. */
export interface BindFailure {
  /** The port in HAProxy's `[addr:port]`, if any. */
  port: number | undefined;
  /** The proxy (frontend) HAProxy names, if any. */
  proxy: string | undefined;
  /** HAProxy's words, without the `[ALERT] (pid) :` prefix. */
  words: string;
}

/** HAProxy's "cannot bind socket" alerts in a reload's output (2.6: `Binding [f:15] for frontend X: cannot bind socket (...) for [a:p]`). */
export function bindFailures(output: string): BindFailure[] {
  const out: BindFailure[] = [];
  for (const line of output.split('\n')) {
    const at = line.search(/cannot bind socket/i);
    if (at < 0) continue;
    // The alert may follow other text on its line (a reload command's output in an error message).
    const alert = line.lastIndexOf('[ALERT]', at);
    const segment = alert >= 0 ? line.slice(alert) : line;
    const words = segment.replace(/^\s*\[ALERT\]\s*(\(\d+\))?\s*:?\s*/, '').trim();
    const addr = /:(\d{1,5})\]\s*$/.exec(segment);
    const proxy = /\b(?:frontend|proxy|listen)\s+'?([A-Za-z0-9_.:-]+?)'?:\s/.exec(segment);
    out.push({ port: addr ? Number(addr[1]) : undefined, proxy: proxy?.[1], words });
  }
  return out;
}

/** Ports of every `bind ADDR:PORT` line of a config: what a HAProxy running it holds. */
export function boundPorts(configText: string): Set<number> {
  const ports = new Set<number>();
  for (const m of configText.matchAll(/^[ \t]*bind[ \t]+(\S+)/gm)) {
    const port = /:(\d{1,5})$/.exec(m[1] ?? '');
    if (port) ports.add(Number(port[1]));
  }
  return ports;
}

/** The host a Node server binds to probe what HAProxy binds for `tcp-address` (`*` = every IPv4 address). */
export function probeHost(tcpAddress: string): string {
  if (tcpAddress === '*' || tcpAddress === '') return '0.0.0.0';
  return tcpAddress.replace(/^\[(.*)\]$/, '$1');
}

/** Binds and closes `host:port` at once: undefined if it could be bound, else the error code (EADDRINUSE, EACCES, ...). */
export function probePort(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

interface Exclusion {
  /** Why, for the log: HAProxy's words or the probe's verdict. */
  reason: string;
  /** The probe saw the port taken (so the probe can tell when it is free again). */
  byProbe: boolean;
  retryAt: number;
}

export interface TcpGuardOptions {
  /** `tcp-address`: what the probe binds. */
  address: string;
  logger: Logger;
  /** Asks for an apply (the retry timer). */
  onRetry: () => void;
  /** Probe new ports before a reload (default true; tests of the reload path turn it off). */
  probe?: boolean;
  /** First retry of an excluded port (default 5 s), doubling up to `maxRetryMs` (default 60 s). */
  minRetryMs?: number;
  maxRetryMs?: number;
}

export class TcpGuard {
  private readonly excluded = new Map<number, Exclusion>();
  /** Next retry delay per port: kept when a port is taken back, so a port that fails again waits longer. */
  private readonly backoff = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: TcpGuardOptions) {}

  /** Ports left out now. */
  get ports(): number[] {
    return [...this.excluded.keys()].sort((a, b) => a - b);
  }

  /** Forgets exclusions (and backoffs) of services that are not in `model` any more. */
  forget(model: BalancerModel): void {
    const present = new Set(model.tcp.map((s) => s.port));
    for (const port of this.excluded.keys()) if (!present.has(port)) this.excluded.delete(port);
    for (const port of this.backoff.keys()) if (!present.has(port)) this.backoff.delete(port);
  }

  /** `model` without the excluded services (pure: changes nothing here). */
  filter(model: BalancerModel): BalancerModel {
    if (!model.tcp.some((s) => this.excluded.has(s.port))) return model;
    return { ...model, tcp: model.tcp.filter((s) => !this.excluded.has(s.port)) };
  }

  /**
   * Before an apply: takes back excluded ports that are due for a retry (or, when `structural`, any
   * the probe had seen taken: a reload is coming anyway) and are free now; probes ports the running
   * HAProxy does not bind yet and leaves out the taken ones. Returns whether the set changed.
   */
  async review(model: BalancerModel, bound: ReadonlySet<number> | undefined, structural: boolean): Promise<boolean> {
    let changed = false;
    const now = Date.now();
    const host = probeHost(this.o.address);
    for (const [port, ex] of [...this.excluded]) {
      if (now < ex.retryAt && !(structural && ex.byProbe)) continue;
      const taken = await probePort(host, port);
      if (taken) {
        ex.retryAt = now + this.nextDelay(port, false);
        if (ex.byProbe) ex.reason = `port ${host}:${port} is in use (${taken})`;
        continue;
      }
      this.excluded.delete(port);
      changed = true;
      this.o.logger.info({ port }, `TCP frontend port ${port} can be bound again: taking it back in`);
    }
    if (this.o.probe !== false && bound !== undefined) {
      for (const svc of model.tcp) {
        if (bound.has(svc.port) || this.excluded.has(svc.port)) continue;
        const taken = await probePort(host, svc.port);
        if (!taken) continue;
        this.exclude(svc, `port ${host}:${svc.port} is in use by another program (${taken})`, true);
        changed = true;
      }
    }
    this.arm();
    return changed;
  }

  /**
   * A reload failed: leaves out the services whose frontend HAProxy could not bind (matched by the
   * port in its alert, else by the `glue_tcp_in_<port>` proxy name). Returns how many were new.
   */
  fromReloadFailure(model: BalancerModel, output: string): number {
    let added = 0;
    for (const f of bindFailures(output)) {
      const byName = f.proxy ? /^glue_tcp_in_(\d+)$/.exec(f.proxy) : null;
      const svc =
        model.tcp.find((s) => s.port === f.port) ??
        (byName ? model.tcp.find((s) => s.port === Number(byName[1])) : undefined);
      if (!svc || this.excluded.has(svc.port)) continue;
      this.exclude(svc, `HAProxy: ${f.words}`, false);
      added += 1;
    }
    this.arm();
    return added;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private exclude(svc: TcpService, reason: string, byProbe: boolean): void {
    const delay = this.nextDelay(svc.port, true);
    this.excluded.set(svc.port, { reason, byProbe, retryAt: Date.now() + delay });
    const containers = [...new Set(svc.servers.map((s) => s.containerName))];
    const labels = [...new Set(svc.servers.map((s) => `glue_tcp_${s.port}_port`))];
    const who = svc.servers.map((s) => `container ${s.containerName} label glue_tcp_${s.port}_port=${svc.port}`);
    this.o.logger.warn(
      {
        port: svc.port,
        containers,
        labels,
        ...(containers.length === 1 ? { containerName: containers[0] } : {}),
        label: labels[0],
        value: String(svc.port),
        reason,
      },
      `TCP frontend on port ${svc.port} left out (${[...new Set(who)].join(', ')}): ${reason}; other routes are applied, the port is tried again in ${delay < 1000 ? `${delay} ms` : `${Math.round(delay / 1000)} s`}`,
    );
  }

  /** The delay before the next retry of `port`; `grow` doubles the one after it. */
  private nextDelay(port: number, grow: boolean): number {
    const min = this.o.minRetryMs ?? 5000;
    const max = this.o.maxRetryMs ?? 60_000;
    const delay = this.backoff.get(port) ?? min;
    if (grow) this.backoff.set(port, Math.min(max, delay * 2));
    return delay;
  }

  /** A timer for the earliest retry, so a freed port comes back without a new event. */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped || this.excluded.size === 0) return;
    const next = Math.min(...[...this.excluded.values()].map((e) => e.retryAt));
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.o.onRetry();
      },
      Math.max(50, next - Date.now()),
    );
    this.timer.unref();
  }
}
