/**
 * Routable addresses: with `address=published` the HTTP index says where another host reaches a route
 * (the host port Docker published, on the address Docker bound), and a route whose port is not
 * published is not indexed. Real dockerd (its userland proxy serves the published port) and real etcd;
 * the request goes to the engine's own bridge address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Glue } from '@glue/core';
import { type DockerEngine, type EtcdServer, httpGet, startDockerd, startEtcd, tempDir, waitFor } from '@glue/testkit';
import { httpEntrySchema } from '../src/schema.js';
import { publisherConfig, startGlue } from './helpers.js';

let engine: DockerEngine;
let etcd: EtcdServer;
let tmp: { path: string; cleanup: () => Promise<void> };
let glue: Glue | undefined;

beforeAll(async () => {
  tmp = await tempDir('glue-etcd-endpoints-');
  [engine, etcd] = await Promise.all([startDockerd(), startEtcd()]);
});

afterAll(async () => {
  await glue?.stop();
  await Promise.allSettled([engine?.stop(), etcd?.stop()]);
  await tmp?.cleanup();
});

describe('address=published', () => {
  it('indexes the published host address and port, which answers; an unpublished port is not indexed', async () => {
    // The engine's bridge address: this engine's own, and a specific host IP Docker binds to.
    const bridgeIp = engine.subnet.replace(/\.0\/24$/, '.1');
    const published = await engine.run({
      name: 'pub1',
      labels: { glue_http_80_host: 'pub.example.com' },
      publish: [{ port: 80, hostIp: bridgeIp }],
    });
    const hidden = await engine.run({ name: 'hidden1', labels: { glue_http_80_host: 'hidden.example.com' } });
    glue = await startGlue(
      engine,
      publisherConfig(tmp.path, 'edge', {
        endpoints: etcd.endpoint,
        'host-id': 'edge',
        address: 'published',
        'advertise-address': '127.0.0.1',
      }),
    );

    const key = `/glue/http/pub.example.com/edge/${published.id}/80`;
    const value = await waitFor(async () => (await etcd.keys('/glue/http/'))[key]?.value, {
      timeoutMs: 15_000,
      what: `${key} in etcd`,
    });
    const entry = httpEntrySchema.parse(JSON.parse(value));
    expect(entry.endpoint.address).toBe(bridgeIp);
    expect(entry.endpoint.port).toBeGreaterThan(0);
    expect(entry.port).toBe(80);
    const r = await httpGet(`http://${entry.endpoint.address}:${entry.endpoint.port}/`);
    expect(`${r.status} ${r.body.trim()}`).toBe('200 pub1');

    // The container record is there; its route is not in the index (no endpoint a balancer could reach).
    const keys = await etcd.keys('/glue/');
    expect(keys[`/glue/hosts/edge/containers/${hidden.id}`]).toBeDefined();
    expect(Object.keys(keys).filter((k) => k.startsWith('/glue/http/hidden.example.com/'))).toEqual([]);
  });
});
