import { describe, expect, it } from 'vitest';
import { ParamError } from '@glue/core';
import type { HttpEntry, IndexedRoute } from '@glue/publisher-etcd';
import { etcdCandidates } from '../src/etcd-source.js';
import { buildFromCandidates, buildModel } from '../src/model.js';
import { parseHaproxyParams } from '../src/options.js';
import { placeModel, planSlots, slotHosts } from '../src/slots.js';
import { builtInInputsKey, Renderer, templateContext } from '../src/template.js';
import { fakeContainer } from '@glue/core/contract';

let revision = 10;
function route(
  patch: Partial<HttpEntry> & { host: string; id: string; name: string },
  createRevision = revision++,
): IndexedRoute {
  const entry: HttpEntry = {
    v: 1,
    vhost: 'shop.example.com',
    port: 80,
    prefix: '',
    stripPrefix: false,
    weight: 100,
    addresses: {},
    endpoint: { address: '10.0.0.1', port: 32768 },
    health: null,
    container: `/glue/hosts/${patch.host}/containers/${patch.id}`,
    ...patch,
  };
  return { key: `/glue/http/${entry.vhost}/${entry.host}/${entry.id}/${entry.port}`, entry, createRevision };
}

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('etcd source: index entries -> the one model builder', () => {
  it('two hosts with a container of the same name get distinct servers at their published endpoints', () => {
    const { candidates } = etcdCandidates([
      route({ host: 'node-1', id: A, name: 'web', endpoint: { address: '10.0.0.1', port: 32768 } }),
      route({ host: 'node-2', id: A, name: 'web', endpoint: { address: '10.0.0.2', port: 32770 } }),
    ]);
    const model = buildFromCandidates(candidates);
    expect(model.http).toHaveLength(1);
    expect(model.http[0]!.servers.map((s) => [s.name, s.address, s.port, s.containerId])).toEqual([
      ['node-1:web:80', '10.0.0.1', 32768, `node-1/${A}`],
      ['node-2:web:80', '10.0.0.2', 32770, `node-2/${A}`],
    ]);
  });

  it('gives the same model as the local source for the same routes (one builder)', () => {
    const info = fakeContainer({
      id: A,
      name: 'web',
      ip: '172.17.0.5',
      labels: {
        glue_http_8080_host: 'a.com',
        glue_http_8080_prefix: 'api',
        glue_http_8080_strip_prefix: 'yes',
        glue_http_8080_weight: '7',
      },
    });
    const local = buildModel([info]).model;
    const fromEtcd = buildFromCandidates(
      etcdCandidates([
        route({
          host: 'h',
          id: A,
          name: 'web',
          vhost: 'a.com',
          port: 8080,
          prefix: 'api',
          stripPrefix: true,
          weight: 7,
          endpoint: { address: '172.17.0.5', port: 8080 },
        }),
      ]).candidates,
    );
    const strip = (m: typeof local) =>
      m.http.map((b) => ({ ...b, servers: b.servers.map(({ address, port, weight }) => ({ address, port, weight })) }));
    expect(strip(fromEtcd)).toEqual(strip(local));
  });

  it('HTTPS flags travel in the index: the balancer serves those hosts over HTTPS as the local source would', () => {
    const { candidates } = etcdCandidates([
      route({ host: 'h1', id: A, name: 'web', vhost: 'shop.example.com', tls: { redirect: true, hsts: false } }),
      route({ host: 'h2', id: B, name: 'web', vhost: 'plain.example.com' }),
    ]);
    expect(buildFromCandidates(candidates).tls).toEqual([{ host: 'shop.example.com', redirect: true, hsts: false }]);
  });

  it('paused, unhealthy and starting containers are out of rotation, with the reason', () => {
    const { candidates, notes } = etcdCandidates([
      route({ host: 'n', id: A, name: 'p', paused: true }),
      route({ host: 'n', id: B, name: 'u', health: 'unhealthy' }),
      route({ host: 'm', id: A, name: 'ok', health: 'healthy' }),
    ]);
    expect(candidates.map((c) => c.containerName)).toEqual(['m/ok']);
    expect(notes.map((n) => [n.containerName, n.reason])).toEqual([
      ['n/p', 'paused'],
      ['n/u', 'health check says unhealthy'],
      ['m/ok', undefined],
    ]);
  });

  it('a strip_prefix conflict is decided by the entry published first (lower create revision)', () => {
    const late = route({ host: 'n1', id: A, name: 'late', prefix: 'api', stripPrefix: true }, 50);
    const early = route({ host: 'n2', id: B, name: 'early', prefix: 'api', stripPrefix: false }, 20);
    const { candidates, notes } = etcdCandidates([late, early]);
    const model = buildFromCandidates(candidates);
    expect(model.http[0]!.strip).toBe(false);
    expect(model.http[0]!.servers.map((s) => s.name)).toEqual(['n2:early:80']);
    expect(notes.find((n) => n.containerName === 'n1/late')!.problems[0]!.reason).toMatch(
      /n2\/early, which has been running longer/,
    );
  });

  it('host ids a HAProxy server name cannot carry are replaced, and stay unique', () => {
    const { candidates } = etcdCandidates([
      route({ host: 'a@b', id: A, name: 'web' }),
      route({ host: 'a-b', id: A, name: 'web' }),
    ]);
    const names = buildFromCandidates(candidates).http[0]!.servers.map((s) => s.name);
    expect(new Set(names).size).toBe(2);
    for (const n of names) expect(n).toMatch(/^[A-Za-z0-9._:-]+$/);
  });

  it('an IPv6 endpoint drops that route with a problem naming it', () => {
    const { candidates, notes } = etcdCandidates([
      route({ host: 'n', id: A, name: 'v6', endpoint: { address: '::1', port: 80 } }),
    ]);
    expect(candidates).toEqual([]);
    expect(notes[0]!.problems[0]!.reason).toMatch(/::1 is not an IPv4 address/);
  });
});

describe('source params', () => {
  it('source=etcd reads the etcd-* keys with the publisher rules, naming them as written', () => {
    const o = parseHaproxyParams(
      'lb',
      {
        source: 'etcd',
        mode: 'file',
        'config-file': '/tmp/x.cfg',
        'etcd-endpoints': '127.0.0.1:2390',
        'etcd-prefix': 'fleet',
      },
      '/tmp',
    );
    expect(o.source).toBe('etcd');
    expect(o.etcd).toMatchObject({ endpoints: ['http://127.0.0.1:2390'], prefix: '/fleet' });
    const bad = (): unknown =>
      parseHaproxyParams(
        'lb',
        { source: 'etcd', 'etcd-endpoints': 'x y', 'etcd-user': 'u', 'etcd-prefix': '/' },
        '/tmp',
      );
    expect(bad).toThrow(ParamError);
    try {
      bad();
    } catch (err) {
      expect((err as ParamError).problems.map((p) => p.key).sort()).toEqual([
        'etcd-endpoints',
        'etcd-password',
        'etcd-prefix',
      ]);
    }
  });

  it('etcd-* keys without source=etcd are refused, not ignored', () => {
    expect(() => parseHaproxyParams('lb', { 'etcd-endpoints': '127.0.0.1:2379' }, '/tmp')).toThrow(
      /etcd-endpoints.*only applies with source=etcd/s,
    );
    expect(() => parseHaproxyParams('lb', { source: 'consul' }, '/tmp')).toThrow(/"consul" is not docker or etcd/);
  });
});

describe('builtInInputsKey: what the built-in template reads, without rendering it', () => {
  const settings = { httpBind: '127.0.0.1:80', tcpAddress: '*', runtimeSocket: '/run/rt.sock', hostMap: '/run/h.map' };
  const placed = (weight: number, address = '10.0.0.1') => {
    const model = buildFromCandidates(
      etcdCandidates([
        route({ host: 'n1', id: A, name: 'web', weight, endpoint: { address, port: 8080 } }),
        route({
          host: 'n2',
          id: B,
          name: 'api',
          vhost: 'api.example.com',
          prefix: 'v1',
          endpoint: { address: '10.0.0.2', port: 80 },
        }),
      ]).candidates,
    );
    const plan = planSlots(slotHosts(model), undefined, 2, true);
    const p = placeModel(model, plan);
    return {
      key: builtInInputsKey(p, plan.declared),
      text: new Renderer().render(templateContext(model, settings, p)),
    };
  };

  it('is equal exactly when the rendered text is', () => {
    const cases = [placed(100), placed(100), placed(7), placed(100, '10.0.0.9')];
    for (const a of cases) for (const b of cases) expect(a.key === b.key).toBe(a.text === b.text);
    expect(cases[0]!.key).not.toBe(cases[2]!.key);
  });
});
