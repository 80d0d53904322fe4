import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Glue, HandlerRun } from '@glue/core';
import { type DockerEngine, type EtcdServer, startDockerd, startEtcd, tempDir, waitFor } from '@glue/testkit';
import { Reader } from '../src/reader.js';
import { expectPublished, publisherConfig, runningIds, startGlue } from './helpers.js';

// etcd goes away while containers change: Glue keeps running its other handlers, and once etcd is
// back the keys match the engine exactly. Also: a lease revoked behind our back, and etcd down at start-up.
let engine: DockerEngine;
let etcd: EtcdServer;
let tmp: { path: string; cleanup: () => Promise<void> };
const glues: Glue[] = [];

beforeAll(async () => {
  tmp = await tempDir('glue-etcd-outage-');
  [engine, etcd] = await Promise.all([startDockerd(), startEtcd()]);
});

afterAll(async () => {
  await Promise.allSettled(glues.map((g) => g.stop()));
  await Promise.allSettled([engine?.stop(), etcd?.stop()]);
  await tmp?.cleanup();
});

async function leasesOf(prefix: string): Promise<Set<string>> {
  return new Set(Object.values(await etcd.keys(prefix)).map((k) => k.lease));
}

describe('etcd outages', () => {
  it('restart etcd while containers change: other handlers keep running, the end state is exact', async () => {
    const a = await engine.run({ name: 'out-a', labels: { glue_http_80_host: 'a.example.com' } });
    const b = await engine.run({ name: 'out-b' });
    const seen: string[] = [];
    const glue = await startGlue(
      engine,
      publisherConfig(tmp.path, 'h1', {
        endpoints: etcd.endpoint,
        'host-id': 'h1',
        ttl: '10',
        'backoff-max': '1',
        'write-timeout': '2',
      }),
      [{ name: 'recorder', events: ['all'], handler: { handle: (event, id) => void seen.push(`${event} ${id}`) } }],
    );
    glues.push(glue);
    const runs: HandlerRun[] = [];
    glue.on('handler', (run) => runs.push(run));
    await expectPublished(etcd, 'h1', () => [a.id, b.id]);
    const publisherCheck = async (): Promise<string | undefined> =>
      (await glue.readiness()).find((c) => c.name === 'publish.ini')?.problem;
    const series = async (name: string): Promise<number | undefined> => {
      const m = new RegExp(`^${name}\\{handler="publish.ini"\\} (\\d+)$`, 'm').exec(await glue.metrics.text());
      return m ? Number(m[1]) : undefined;
    };
    expect(await publisherCheck()).toBeUndefined();
    expect(await series('glue_etcd_up')).toBe(1);
    expect(await series('glue_etcd_keys')).toBe(Object.keys(await etcd.keys('/glue/')).length);
    expect(await series('glue_etcd_lease_grants_total')).toBe(1);

    await etcd.kill();
    await engine.cli(['rm', '-f', 'out-a']);
    const c = await engine.run({ name: 'out-c', labels: { glue_http_80_host: 'c.example.com' } });
    const d = await engine.run({ name: 'out-d' });
    await engine.cli(['rename', 'out-b', 'out-b2']);
    await engine.cli(['rm', '-f', d.id]);
    // Glue went on: the other handler saw every change while etcd was down, and no handler failed.
    await waitFor(
      () => seen.includes(`destroy ${d.id}`) && seen.includes(`start ${c.id}`) && seen.includes(`rename ${b.id}`),
      { what: 'the recorder to see the changes' },
    );
    await glue.idle();
    expect(runs.filter((r) => !r.ok)).toEqual([]);
    // /readyz says why: the publisher cannot write.
    await waitFor(async () => (await publisherCheck())?.startsWith('etcd is down'), {
      what: 'the publisher not ready',
    });
    expect(await series('glue_etcd_up')).toBe(0);

    await etcd.restart();
    await expectPublished(etcd, 'h1', () => runningIds(engine), 30_000);
    expect((await runningIds(engine)).sort()).toEqual([b.id, c.id].sort());
    const keys = await etcd.keys('/glue/');
    expect(JSON.parse(keys[`/glue/hosts/h1/containers/${b.id}`]!.value).name).toBe('out-b2');
    expect(
      Object.keys(keys)
        .filter((k) => k.startsWith('/glue/http/'))
        .sort(),
    ).toEqual([`/glue/http/c.example.com/h1/${c.id}/80`]);
    expect((await leasesOf('/glue/hosts/h1/')).size).toBe(1);
    expect(await publisherCheck()).toBeUndefined();
    expect(await series('glue_etcd_up')).toBe(1);
  });

  it('a lease revoked behind its back is replaced and everything published again', async () => {
    const [lease] = [...(await leasesOf('/glue/hosts/h1/'))];
    await etcd.ctl(['lease', 'revoke', BigInt(lease!).toString(16)]);
    // Revoking deletes every key on that lease at once. The agent may already have noticed and
    // republished on a new lease by the time we look (its keepalive runs every TTL/3), so what we can
    // assert right away is that no key still carries the revoked lease.
    expect(await leasesOf('/glue/hosts/h1/')).not.toContain(lease);
    // The keepalive (every TTL/3) finds the lease gone; a new one carries the same keys.
    await expectPublished(etcd, 'h1', () => runningIds(engine), 20_000);
    const leases = await leasesOf('/glue/hosts/h1/');
    expect(leases.size).toBe(1);
    expect(leases.has(lease!)).toBe(false);
  });

  it('a reader watch rides over the etcd restart and ends equal to the engine', async () => {
    const reader = new Reader({ endpoints: etcd.endpoint });
    try {
      const watch = await reader.watch();
      expect(
        watch
          .byHost('h1')
          .map((r) => r.id)
          .sort(),
      ).toEqual(await runningIds(engine));
      await etcd.kill();
      const e = await engine.run({ name: 'out-e' });
      await etcd.restart();
      await expectPublished(etcd, 'h1', () => runningIds(engine), 30_000);
      await waitFor(() => watch.byHost('h1').some((r) => r.id === e.id), {
        timeoutMs: 30_000,
        what: 'the watch to see out-e',
      });
      expect(
        watch
          .byHost('h1')
          .map((r) => r.id)
          .sort(),
      ).toEqual(await runningIds(engine));
      await watch.close();
    } finally {
      await reader.close();
    }
  });

  it('engine killed and restarted: after Glue reconnects the keys match the engine', async () => {
    const keep = await engine.run({ name: 'out-keep', restartPolicy: 'always' });
    await expectPublished(etcd, 'h1', () => runningIds(engine));
    await engine.kill();
    await engine.restart();
    // out-keep comes back (restart policy), the others stay down: only the `none` after the reconnect can tell.
    await waitFor(async () => (await runningIds(engine)).includes(keep.id), {
      timeoutMs: 30_000,
      what: 'out-keep to restart',
    });
    await expectPublished(etcd, 'h1', () => runningIds(engine), 40_000);
    expect(await runningIds(engine)).toEqual([keep.id]);
  });

  it('etcd down at start-up: Glue starts anyway and publishes once etcd is up', async () => {
    await etcd.kill();
    const glue = await startGlue(
      engine,
      publisherConfig(tmp.path, 'h2', { endpoints: etcd.endpoint, 'host-id': 'h2', ttl: '10', 'backoff-max': '1' }),
    );
    glues.push(glue);
    await new Promise((r) => setTimeout(r, 1500));
    await etcd.restart();
    await expectPublished(etcd, 'h2', () => runningIds(engine), 30_000);
    const reader = new Reader({ endpoints: etcd.endpoint });
    try {
      expect((await reader.hosts()).map((h) => h.host).sort()).toEqual(['h1', 'h2']);
    } finally {
      await reader.close();
    }
  });
});
