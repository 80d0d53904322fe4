/**
 * The HAProxy handler's series, read from its router's stats at scrape time (the apply path knows
 * nothing of metrics), labelled by handler (the INI file, or glue-balancer).
 */
import { followTotal, type Metrics } from '@glue/core';
import type { Router } from './router.js';

/** Registers the series of `router` under `handler`; returns the function that stops collecting them. */
export function observeRouter(metrics: Metrics, handler: string, router: Router): () => void {
  const labelNames = ['handler'];
  const applies = metrics.counter({
    name: 'glue_haproxy_applies_total',
    help: 'Applies of the routing model (one per coalesced burst of changes)',
    labelNames,
  });
  const reloads = metrics.counter({
    name: 'glue_haproxy_reloads_total',
    help: 'HAProxy reloads (a structural change: hosts, prefixes, TCP ports)',
    labelNames,
  });
  const runtime = metrics.counter({
    name: 'glue_haproxy_runtime_applies_total',
    help: 'Applies done through the runtime API alone, without a reload',
    labelNames,
  });
  const failures = metrics.counter({
    name: 'glue_haproxy_apply_failures_total',
    help: 'Applies that failed (HAProxy kept its last good config)',
    labelNames,
  });
  const success = metrics.gauge({
    name: 'glue_haproxy_last_apply_success',
    help: '1 if the last apply succeeded, 0 if it failed',
    labelNames,
  });
  const stamp = metrics.gauge({
    name: 'glue_haproxy_last_apply_timestamp_seconds',
    help: 'When the last apply ended (Unix time)',
    labelNames,
  });
  const servers = metrics.gauge({
    name: 'glue_haproxy_servers',
    help: 'Servers in the running config, by state: ready, or out of rotation (retired: their container died; draining: waiting for connections to end)',
    labelNames: ['handler', 'state'],
  });
  const backends = metrics.gauge({
    name: 'glue_haproxy_backends',
    help: 'HTTP and TCP backends in the running config',
    labelNames,
  });
  const https = router.https;
  const certs = metrics.gauge({
    name: 'glue_haproxy_certificates',
    help: 'Certificates HAProxy serves besides the default one, by source (certs-dir, acme)',
    labelNames: ['handler', 'source'],
  });
  const expiry = metrics.gauge({
    name: 'glue_haproxy_certificate_earliest_expiry_timestamp_seconds',
    help: 'When the first of the served certificates expires (Unix time): alert well before it',
    labelNames,
  });
  const uncovered = metrics.gauge({
    name: 'glue_haproxy_https_hosts_without_certificate',
    help: 'HTTPS hosts served with the default certificate (no certificate names them yet)',
    labelNames,
  });
  const orders = metrics.counter({
    name: 'glue_haproxy_acme_orders_total',
    help: 'ACME orders, by result (issued, failed)',
    labelNames: ['handler', 'result'],
  });
  const followOrders = {
    issued: followTotal(orders, { handler, result: 'issued' }),
    failed: followTotal(orders, { handler, result: 'failed' }),
  };
  const follow = {
    applies: followTotal(applies, { handler }),
    reloads: followTotal(reloads, { handler }),
    runtime: followTotal(runtime, { handler }),
    failures: followTotal(failures, { handler }),
  };
  const unregister = metrics.collector(() => {
    const s = router.stats;
    follow.applies(s.applies);
    follow.reloads(s.reloads);
    follow.runtime(s.runtimeApplies);
    follow.failures(s.failures);
    if (s.lastApply) {
      success.set({ handler }, s.lastApply.ok ? 1 : 0);
      stamp.set({ handler }, s.lastApply.at / 1000);
    }
    const live = router.applier.liveCounts();
    // Retired servers are still in the running model; draining ones already left it (removed, their
    // connections ending).
    servers.set({ handler, state: 'ready' }, live.servers - live.retired);
    servers.set({ handler, state: 'retired' }, live.retired);
    servers.set({ handler, state: 'draining' }, live.draining);
    backends.set({ handler }, live.backends);
    if (https) {
      const t = https.stats();
      for (const source of ['certs-dir', 'acme']) certs.set({ handler, source }, t.bySource.get(source) ?? 0);
      if (t.earliestNotAfter) expiry.set({ handler }, t.earliestNotAfter.getTime() / 1000);
      uncovered.set({ handler }, t.withoutCertificate);
      if (t.acme) {
        followOrders.issued(t.acme.issued);
        followOrders.failed(t.acme.failed);
      }
    }
  });
  // A stopped or removed handler leaves no series behind (a last value would mislead alerts).
  return () => {
    unregister();
    for (const m of [applies, reloads, runtime, failures, success, stamp, backends, expiry, uncovered])
      m.remove({ handler });
    for (const source of ['certs-dir', 'acme']) certs.remove({ handler, source });
    for (const result of ['issued', 'failed']) orders.remove({ handler, result });
    for (const state of ['ready', 'retired', 'draining']) servers.remove({ handler, state });
  };
}

/** The router's readiness: undefined once the last apply succeeded, else why not. */
export function routerProblem(router: Router): string | undefined {
  const last = router.stats.lastApply;
  if (last === undefined) return 'no apply has finished yet';
  return last.ok ? undefined : `the last apply failed (HAProxy runs its last good config): ${last.error}`;
}
