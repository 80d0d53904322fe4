import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Glue } from '@glue/core';
import { type DockerEngine, type EtcdServer, startDockerd, startEtcd, tempDir, waitFor } from '@glue/testkit';
import { Reader } from '../src/reader.js';
import { containerRecordSchema, httpEntrySchema } from '../src/schema.js';
import { expectPublished, publishedIds, publisherConfig, runningIds, startGlue } from './helpers.js';

// Real dockerd + real etcd 3.4: keys appear and vanish with containers, the HTTP index, the reader,
// the sweep of a crashed predecessor's keys, two hosts side by side, deletion on a clean stop.
let engine: DockerEngine;
let etcd: EtcdServer;
let tmp: { path: string; cleanup: () => Promise<void> };
const glues: Glue[] = [];
let reader: Reader;

beforeAll(async () => {
  tmp = await tempDir('glue-etcd-int-');
  [engine, etcd] = await Promise.all([startDockerd(), startEtcd()]);
  reader = new Reader({ endpoints: etcd.endpoint });
});

afterAll(async () => {
  await Promise.allSettled(glues.map((g) => g.stop()));
  await reader?.close();
  await Promise.allSettled([engine?.stop(), etcd?.stop()]);
  await tmp?.cleanup();
});

describe('Publisher on a real engine and etcd', () => {
  let web: { id: string; name: string; ip: string };

  it('sweeps keys a crashed predecessor left for this host, and leaves other hosts alone', async () => {
    // A fake earlier crash of host "alpha": a container that no longer exists, an index entry, no lease.
    await etcd.ctl(['put', '/glue/hosts/alpha/containers/deadbeef', '{"v":1,"host":"alpha","id":"deadbeef"}']);
    await etcd.ctl(['put', '/glue/http/old.example.com/alpha/deadbeef/80', '{}']);
    await etcd.ctl(['put', '/glue/hosts/other/containers/cafe', '{"v":1,"host":"other","id":"cafe"}']);
    await etcd.ctl(['put', '/glue/http/old.example.com/other/cafe/80', '{}']);
    web = await engine.run({
      name: 'web1',
      labels: { glue_http_80_host: 'Shop.Example.com', glue_http_80_prefix: 'api' },
    });
    glues.push(
      await startGlue(
        engine,
        publisherConfig(tmp.path, 'alpha', { endpoints: etcd.endpoint, 'host-id': 'alpha', ttl: '10' }),
      ),
    );
    await expectPublished(etcd, 'alpha', () => [web.id]);
    const keys = await etcd.keys('/glue/');
    expect(keys['/glue/http/old.example.com/alpha/deadbeef/80']).toBeUndefined();
    expect(keys['/glue/hosts/other/containers/cafe']).toBeDefined();
    expect(keys['/glue/http/old.example.com/other/cafe/80']).toBeDefined();
    // Every key of alpha hangs on one lease.
    const alpha = Object.entries(keys).filter(([k]) => k.includes('/alpha/'));
    const leases = new Set(alpha.map(([, v]) => v.lease));
    expect(leases.size).toBe(1);
    expect([...leases][0]).not.toBe('0');
  });

  it('publishes a summary of the container and an index entry for its HTTP host', async () => {
    const keys = await etcd.keys('/glue/');
    const record = containerRecordSchema.parse(JSON.parse(keys[`/glue/hosts/alpha/containers/${web.id}`]!.value));
    expect(record).toMatchObject({
      host: 'alpha',
      id: web.id,
      name: 'web1',
      image: 'glue-test/busybox',
      state: { running: true },
      health: null,
    });
    expect(record.networks?.bridge?.ip).toBe(web.ip);
    expect(record.labels?.glue_http_80_host).toBe('Shop.Example.com');
    const entry = httpEntrySchema.parse(JSON.parse(keys[`/glue/http/shop.example.com/alpha/${web.id}/80`]!.value));
    expect(entry).toMatchObject({ vhost: 'shop.example.com', port: 80, prefix: 'api', addresses: { bridge: web.ip } });
    // The typed reader sees the same.
    expect((await reader.serving('shop.example.com')).map((e) => e.id)).toEqual([web.id]);
    expect((await reader.containers({ host: 'alpha' })).map((r) => r.name)).toEqual(['web1']);
    expect((await reader.hosts()).map((h) => h.host)).toEqual(['alpha']);
  });

  it('follows start, stop, rename, restart and removal', async () => {
    const watch = await reader.watch();
    const second = await engine.run({ name: 'web2', labels: { glue_http_80_host: 'shop.example.com' } });
    await expectPublished(etcd, 'alpha', () => [web.id, second.id]);
    await waitFor(async () => (await reader.serving('shop.example.com')).length === 2, {
      what: 'two servers in the index',
    });

    await engine.cli(['rename', 'web2', 'web2-renamed']);
    await waitFor(async () => (await reader.containers()).some((r) => r.name === 'web2-renamed'), {
      what: 'the new name in etcd',
    });

    const before = (await reader.containers()).find((r) => r.id === web.id)?.state?.startedAt;
    await engine.cli(['restart', '-t', '0', 'web1']);
    await waitFor(
      async () => {
        const now = (await reader.containers()).find((r) => r.id === web.id)?.state?.startedAt;
        return now !== undefined && now !== before;
      },
      { what: 'a new StartedAt after the restart', timeoutMs: 20_000 },
    );

    await engine.cli(['stop', '-t', '0', 'web2-renamed']);
    await expectPublished(etcd, 'alpha', () => [web.id]);
    expect((await reader.serving('shop.example.com')).map((e) => e.id)).toEqual([web.id]);
    await engine.cli(['rm', 'web2-renamed']);

    // The watch saw it all and agrees with etcd.
    await waitFor(() => watch.byHost('alpha').length === 1, { what: 'the watch to drop web2' });
    expect(watch.byHost('alpha')[0]?.id).toBe(web.id);
    expect(
      watch
        .containers()
        .map((r) => r.host)
        .sort(),
    ).toEqual(['alpha', 'other']);
    await watch.close();
  });

  it('follows health: starting, then healthy, in the record and in the index', async () => {
    const hc = await engine.run({
      name: 'hc1',
      labels: { glue_http_80_host: 'health.example.com' },
      healthcheck: { test: ['CMD', 'true'], intervalMs: 500 },
    });
    await waitFor(
      async () => (await reader.containers({ host: 'alpha' })).find((r) => r.id === hc.id)?.health === 'healthy',
      { what: 'health=healthy in etcd', timeoutMs: 20_000 },
    );
    expect((await reader.serving('health.example.com')).map((e) => e.health)).toEqual(['healthy']);
    await engine.cli(['rm', '-f', hc.id]);
    await expectPublished(etcd, 'alpha', () => [web.id]);
    expect(await reader.serving('health.example.com')).toEqual([]);
  });

  it('a second agent with another host id publishes beside the first without touching its keys', async () => {
    const beta = await startGlue(
      engine,
      publisherConfig(
        tmp.path,
        'beta',
        { endpoints: etcd.endpoint, 'host-id': 'beta', ttl: '10' },
        'DockerGlue.handlers.publishers.distconfig.Publisher',
      ),
    );
    glues.push(beta);
    await expectPublished(etcd, 'beta', () => runningIds(engine));
    expect(await publishedIds(etcd, 'alpha')).toEqual(await runningIds(engine));
    expect((await reader.serving('shop.example.com')).map((e) => e.host).sort()).toEqual(['alpha', 'beta']);
    await beta.stop();
    // beta's clean stop revokes its lease: its keys go at once, alpha's stay.
    expect(await publishedIds(etcd, 'beta')).toEqual([]);
    expect(Object.keys(await etcd.keys('/glue/hosts/beta/'))).toEqual([]);
    expect(await publishedIds(etcd, 'alpha')).toEqual(await runningIds(engine));
    expect(Object.keys(await etcd.keys('/glue/hosts/other/'))).toHaveLength(1);
  });

  it('deletes every key of the host at once on a clean stop', async () => {
    const alpha = glues[0]!;
    await alpha.stop();
    const left = Object.keys(await etcd.keys('/glue/')).filter((k) => k.includes('/alpha'));
    expect(left).toEqual([]);
  });
});
