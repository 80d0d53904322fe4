/**
 * Two engines that report the same `docker info` ID (every private dockerd on one machine does: it
 * comes from /etc/docker/key.json, as on cloned VM images) and run Glue with the default host-id:
 * each publishes under its own host-id, neither deletes the other's keys, and one stopping (which
 * revokes its lease) leaves the other's keys in place. Before, the second engine's sweep deleted the
 * first's keys and its stop revoked them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Glue } from '@glue/core';
import { type DockerEngine, type EtcdServer, startDockerd, startEtcd, tempDir, waitFor } from '@glue/testkit';
import { publisherConfig, startGlue } from './helpers.js';

let one: DockerEngine;
let two: DockerEngine;
let etcd: EtcdServer;
let tmp: { path: string; cleanup: () => Promise<void> };
const glues: Glue[] = [];

/** host-id -> container ids published under it, read with etcdctl. */
async function published(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const key of Object.keys(await etcd.keys('/glue/hosts/'))) {
    const m = /^\/glue\/hosts\/([^/]+)\/containers\/([0-9a-f]+)$/.exec(key);
    if (m) out.set(m[1] as string, [...(out.get(m[1] as string) ?? []), m[2] as string].sort());
  }
  return out;
}

beforeAll(async () => {
  tmp = await tempDir('glue-etcd-identity-');
  [one, two, etcd] = await Promise.all([startDockerd(), startDockerd(), startEtcd()]);
});

afterAll(async () => {
  await Promise.allSettled(glues.map((g) => g.stop()));
  await Promise.allSettled([one?.stop(), two?.stop(), etcd?.stop()]);
  await tmp?.cleanup();
});

describe('engines that share a docker info ID', () => {
  it('publish under their own default host-ids and never touch each other', async () => {
    const [infoOne, infoTwo] = await Promise.all([one.docker.info(), two.docker.info()]);
    // The premise: the machine gives both the same ID.
    expect((infoOne as { ID: string }).ID).toBe((infoTwo as { ID: string }).ID);
    const a = await one.run({ name: 'on-one', labels: { glue_http_80_host: 'one.example.com' } });
    const b = await two.run({ name: 'on-two', labels: { glue_http_80_host: 'two.example.com' } });
    const g1 = await startGlue(one, publisherConfig(tmp.path, 'one', { endpoints: etcd.endpoint, ttl: '10' }));
    glues.push(g1);
    await waitFor(async () => [...(await published()).values()].some((ids) => ids.includes(a.id)), {
      timeoutMs: 15_000,
      what: 'engine one published',
    });
    const g2 = await startGlue(two, publisherConfig(tmp.path, 'two', { endpoints: etcd.endpoint, ttl: '10' }));
    glues.push(g2);
    await waitFor(async () => [...(await published()).values()].some((ids) => ids.includes(b.id)), {
      timeoutMs: 15_000,
      what: 'engine two published',
    });

    const hosts = await published();
    expect(hosts.size).toBe(2);
    const hostOf = (id: string): string => [...hosts].find(([, ids]) => ids.includes(id))?.[0] ?? '';
    expect(hostOf(a.id)).not.toBe(hostOf(b.id));
    expect(hosts.get(hostOf(a.id))).toEqual([a.id]);
    expect(hosts.get(hostOf(b.id))).toEqual([b.id]);
    // host-id: the engine's name and a short form of its identity.
    expect(hostOf(a.id)).toMatch(/^.+-[0-9a-f]{8}$/);

    // Engine two stops cleanly (its lease is revoked): engine one's keys stay.
    await g2.stop();
    const after = await published();
    expect(after.get(hostOf(a.id))).toEqual([a.id]);
    expect(after.has(hostOf(b.id))).toBe(false);
  });
});
