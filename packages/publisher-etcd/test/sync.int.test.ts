import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@glue/core';
import { type EtcdServer, startEtcd, waitFor } from '@glue/testkit';
import { createEtcdClient } from '../src/client.js';
import { containerKey, httpKey, ownerKey } from '../src/keys.js';
import { EtcdSync } from '../src/sync.js';

// The sync engine alone against a real etcd 3.4: large reconciles in bounded transactions, no lost
// update through random churn and an etcd restart, rival agents on one host id, keep-on-stop.
let etcd: EtcdServer;
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await etcd?.stop();
});

function makeSync(host: string, engineId: string, ttl = 10, resyncMs = 0): EtcdSync {
  const client = createEtcdClient({ endpoints: [etcd.url] });
  const sync = new EtcdSync({
    client,
    prefix: '/t',
    host,
    ttlSeconds: ttl,
    logger: silentLogger(),
    engine: () => ({ id: engineId, name: engineId }),
    backoffMaxMs: 500,
    resyncMs,
  });
  stops.push(async () => {
    await sync.stop(true);
    client.close();
  });
  return sync;
}

function entriesFor(host: string, id: string, version: number): Map<string, string> {
  const m = new Map([[containerKey('/t', host, id), JSON.stringify({ v: 1, host, id, version })]]);
  if (version % 2 === 0) m.set(httpKey('/t', `${id}.example.com`, host, id, 80), JSON.stringify({ id, version }));
  return m;
}

async function expectExactly(host: string, model: Map<string, Map<string, string>>, timeoutMs = 20_000): Promise<void> {
  const want: Record<string, string> = {};
  for (const m of model.values()) for (const [k, v] of m) want[k] = v;
  let have: Record<string, string> = {};
  await waitFor(
    async () => {
      const keys = await etcd.keys('/t/');
      have = {};
      for (const [k, v] of Object.entries(keys))
        if (k !== ownerKey('/t', host) && (k.includes(`/hosts/${host}/`) || k.includes(`/${host}/`))) have[k] = v.value;
      return JSON.stringify(Object.entries(have).sort()) === JSON.stringify(Object.entries(want).sort());
    },
    { timeoutMs, intervalMs: 100, what: `exact keys of ${host}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${Object.keys(have).length} keys in etcd, ${Object.keys(want).length} wanted`);
  });
}

describe('EtcdSync on a real etcd', () => {
  it('publishes 1,000 containers in bounded transactions on one lease', async () => {
    const sync = makeSync('big', 'E-big');
    const all = new Map<string, Map<string, string>>();
    for (let i = 0; i < 1000; i += 1) all.set(`c${i}`, entriesFor('big', `c${i}`, 2));
    sync.replaceAll(all);
    sync.start();
    expect(await sync.flushed(20_000)).toBe(true);
    expect(sync.totals.txns).toBeGreaterThanOrEqual(20);
    const keys = await etcd.keys('/t/hosts/big/');
    expect(Object.keys(keys)).toHaveLength(1001);
    expect(new Set(Object.values(keys).map((k) => k.lease))).toEqual(new Set([sync.leaseId]));
    await expectExactly('big', all);
  });

  it('loses no update through random churn and an etcd restart', async () => {
    const sync = makeSync('churn', 'E-churn');
    sync.start();
    const model = new Map<string, Map<string, string>>();
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const churn = (rounds: number): void => {
      for (let i = 0; i < rounds; i += 1) {
        const id = `c${rnd(60)}`;
        if (rnd(3) === 0) {
          model.delete(id);
          sync.set(id, undefined);
        } else {
          const e = entriesFor('churn', id, rnd(10));
          model.set(id, e);
          sync.set(id, e);
        }
      }
    };
    churn(200);
    await expectExactly('churn', model);
    const writes = (async () => {
      for (let r = 0; r < 30; r += 1) {
        churn(20);
        await new Promise((res) => setTimeout(res, 50));
      }
    })();
    await new Promise((res) => setTimeout(res, 300));
    await etcd.kill();
    await writes;
    expect(sync.state).toBe('down');
    await etcd.restart();
    await expectExactly('churn', model, 30_000);
    // The index keys of deleted containers went too.
    const stray = Object.keys(await etcd.keys('/t/http/')).filter(
      (k) => k.includes('/churn/') && !model.has(k.split('/')[5]!),
    );
    expect(stray).toEqual([]);
  });

  it('refuses to share a host id with an agent of another engine, and touches none of its keys', async () => {
    const first = makeSync('shared', 'E-one');
    first.set('x', entriesFor('shared', 'x', 2));
    first.start();
    expect(await first.flushed(10_000)).toBe(true);
    const rival = makeSync('shared', 'E-two');
    rival.set('y', new Map([[containerKey('/t', 'shared', 'y'), '{}']]));
    rival.start();
    await waitFor(() => rival.state === 'down', { what: 'the rival to refuse' });
    const keys = Object.keys(await etcd.keys('/t/hosts/shared/'));
    expect(keys.sort()).toEqual([containerKey('/t', 'shared', 'x'), ownerKey('/t', 'shared')].sort());
    await rival.stop(true);
    expect(Object.keys(await etcd.keys('/t/hosts/shared/'))).toHaveLength(2);
  });

  it('the periodic resync repairs keys deleted or changed behind its back', async () => {
    const sync = makeSync('tamper', 'E-tamper', 10, 1000);
    const model = new Map([
      ['t1', entriesFor('tamper', 't1', 2)],
      ['t2', entriesFor('tamper', 't2', 3)],
    ]);
    for (const [id, e] of model) sync.set(id, e);
    sync.start();
    expect(await sync.flushed(10_000)).toBe(true);
    await etcd.ctl(['del', containerKey('/t', 'tamper', 't1')]);
    await etcd.ctl(['put', containerKey('/t', 'tamper', 't2'), 'garbage']);
    await etcd.ctl(['put', containerKey('/t', 'tamper', 'intruder'), '{}']);
    await expectExactly('tamper', model, 10_000);
  });

  it('without revoke, stop() leaves the keys until the TTL', async () => {
    const sync = makeSync('keep', 'E-keep', 3);
    sync.set('k', entriesFor('keep', 'k', 1));
    sync.start();
    expect(await sync.flushed(10_000)).toBe(true);
    await sync.stop(false);
    expect(Object.keys(await etcd.keys('/t/hosts/keep/'))).toHaveLength(2);
    await waitFor(async () => Object.keys(await etcd.keys('/t/hosts/keep/')).length === 0, {
      timeoutMs: 10_000,
      intervalMs: 200,
      what: 'the keys to expire',
    });
  });
});
