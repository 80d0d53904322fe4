/**
 * The publisher's series, read from its sync at scrape time (the publishing path knows nothing of
 * metrics), labelled by handler (the INI file).
 */
import { followTotal, type Metrics } from '@glue/core';
import type { EtcdSync } from './sync.js';

/** Registers the series of the sync `current()` returns (none before the first event); returns the function that stops collecting. */
export function observeSync(metrics: Metrics, handler: string, current: () => EtcdSync | undefined): () => void {
  const labelNames = ['handler'];
  const up = metrics.gauge({
    name: 'glue_etcd_up',
    help: '1 while the publisher writes to etcd (state up), else 0',
    labelNames,
  });
  const keys = metrics.gauge({
    name: 'glue_etcd_keys',
    help: 'Keys this host publishes, owner key included',
    labelNames,
  });
  const counters = {
    puts: metrics.counter({ name: 'glue_etcd_puts_total', help: 'Keys written', labelNames }),
    deletes: metrics.counter({ name: 'glue_etcd_deletes_total', help: 'Keys deleted', labelNames }),
    txns: metrics.counter({ name: 'glue_etcd_transactions_total', help: 'Transactions committed', labelNames }),
    grants: metrics.counter({
      name: 'glue_etcd_lease_grants_total',
      help: 'Leases granted (the first and after each loss)',
      labelNames,
    }),
    renewals: metrics.counter({
      name: 'glue_etcd_lease_renewals_total',
      help: 'Lease keepalives etcd answered',
      labelNames,
    }),
    losses: metrics.counter({
      name: 'glue_etcd_lease_losses_total',
      help: 'Leases found expired (the keys were gone until published again)',
      labelNames,
    }),
    keepaliveFailures: metrics.counter({
      name: 'glue_etcd_lease_keepalive_failures_total',
      help: 'Lease keepalives that failed (etcd unreachable or refusing)',
      labelNames,
    }),
  };
  const follow = Object.fromEntries(
    Object.entries(counters).map(([name, c]) => [name, followTotal(c, { handler })]),
  ) as Record<keyof typeof counters, (total: number) => void>;
  const advance = (name: keyof typeof counters, value: number): void => follow[name](value);
  const unregister = metrics.collector(() => {
    const sync = current();
    up.set({ handler }, sync?.state === 'up' ? 1 : 0);
    if (!sync) return;
    keys.set({ handler }, sync.size);
    advance('puts', sync.totals.puts);
    advance('deletes', sync.totals.deletes);
    advance('txns', sync.totals.txns);
    const lease = sync.leaseCounts;
    advance('grants', lease.grants);
    advance('renewals', lease.renewals);
    advance('losses', lease.losses);
    advance('keepaliveFailures', lease.keepaliveFailures);
  });
  // A stopped or removed publisher leaves no series behind (a last `up 1` would mislead alerts).
  return () => {
    unregister();
    for (const m of [up, keys, ...Object.values(counters)]) m.remove({ handler });
  };
}
