/**
 * New hosts without a reload: glue-balancer in managed mode with 2 spare host slots against a real
 * dockerd. A new host goes in through the runtime API (add server + add map) and out again the same
 * way; the third new host exhausts the pool (one reload, fresh pool); a prefix route forces a reload
 * and every host still routes. The files on disk always describe what HAProxy runs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, freePort, httpGet, requireBinary, startDockerd, tempDir, waitFor } from '@glue/testkit';
import { fakeContainer } from '@glue/core/contract';
import { checkConfig } from '../src/haproxy-io.js';
import { buildModel } from '../src/model.js';
import { hostMapText, placeModel, planSlots, slotHosts } from '../src/slots.js';
import { Renderer, templateContext } from '../src/template.js';
import { startBalancer, type RunningBalancer, readMap } from './helpers.js';

let engine: DockerEngine;
let dir: { path: string; cleanup: () => Promise<void> };
let lb: RunningBalancer;
let port: number;
let configFile: string;
let hostMap: string;
const body = async (host: string, path = '/'): Promise<string> => {
  const r = await httpGet(`http://127.0.0.1:${port}${path}`, { host });
  return `${r.status} ${r.body.trim()}`;
};
const routable = (host: string, name: string, path = '/'): Promise<unknown> =>
  waitFor(async () => (await body(host, path)) === `200 ${name}`, {
    timeoutMs: 15_000,
    what: `${host}${path} serving ${name}`,
  });
const counts = async (): Promise<{ reloads: number; runtime: number }> => {
  await lb.handler.applier.settled();
  return { reloads: lb.handler.stats.reloads, runtime: lb.handler.stats.runtimeApplies };
};

beforeAll(async () => {
  requireBinary('haproxy');
  engine = await startDockerd();
  dir = await tempDir('glue-lb-hosts-');
  port = await freePort();
  configFile = join(dir.path, 'haproxy.cfg');
  hostMap = join(dir.path, 'haproxy.hosts.map');
  lb = await startBalancer([
    '--docker-url',
    engine.url,
    '--mode',
    'managed',
    '--config-file',
    configFile,
    '--http-bind',
    `127.0.0.1:${port}`,
    '--debounce-ms',
    '20',
    '--spare-backends',
    '2',
  ]);
});

afterAll(async () => {
  await lb?.stop();
  await engine?.stop();
  await dir?.cleanup();
});

describe('host slots and the host map', () => {
  it('the built-in template with slots, spares and a map passes haproxy -c', async () => {
    const containers = ['a.com', 'b.com', 'c.com'].map((h, i) =>
      fakeContainer({ name: `c${i}`, ip: `172.17.0.${i + 2}`, labels: { glue_http_80_host: h } }),
    );
    containers.push(
      fakeContainer({
        name: 'p',
        ip: '172.17.0.9',
        labels: { glue_http_80_host: 'a.com', glue_http_80_prefix: 'x/y', glue_http_80_strip_prefix: '1' },
      }),
    );
    const model = buildModel(containers).model;
    const plan = planSlots(slotHosts(model), undefined, 4, true);
    const map = join(dir.path, 'check.hosts.map');
    writeFileSync(map, hostMapText(plan));
    const file = join(dir.path, 'check.cfg');
    writeFileSync(
      file,
      new Renderer().render(
        templateContext(
          model,
          { httpBind: '127.0.0.1:18090', tcpAddress: '*', runtimeSocket: join(dir.path, 'x.sock'), hostMap: map },
          placeModel(model, plan),
        ),
      ),
    );
    const r = await checkConfig(requireBinary('haproxy'), file);
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
  });

  it('a container with a new host becomes routable without a reload; config and map on disk contain it', async () => {
    expect(await body('h1.example.com')).toMatch(/^503/);
    const before = await counts();
    await engine.run({ name: 'h1', labels: { glue_http_80_host: 'h1.example.com' } });
    await routable('h1.example.com', 'h1');
    const after = await counts();
    expect(after.reloads).toBe(before.reloads);
    expect(after.runtime).toBeGreaterThan(before.runtime);
    expect(readMap(hostMap)).toBe('h1.example.com glue_host_0\n');
    expect(readFileSync(configFile, 'utf8')).toMatch(
      /^backend glue_host_0\n {4}mode http\n {4}balance roundrobin\n {4}server h1:80 \S+:80 weight 100$/m,
    );
    expect(lb.logs.some((l) => /HAProxy updated through the runtime API/.test(l.msg))).toBe(true);
  });

  it('it goes away without a reload too (503 after)', async () => {
    const before = await counts();
    await engine.cli(['rm', '-f', 'h1']);
    await waitFor(async () => (await body('h1.example.com')).startsWith('503'), {
      timeoutMs: 15_000,
      what: 'h1.example.com gone',
    });
    const after = await counts();
    expect(after.reloads).toBe(before.reloads);
    expect(readMap(hostMap)).toBe('');
    expect(readFileSync(configFile, 'utf8')).not.toContain('h1:80');
  });

  it('pool exhaustion (2 spares): the third new host causes exactly one reload, and all three route', async () => {
    const before = await counts();
    for (const name of ['a1', 'a2']) {
      await engine.run({ name, labels: { glue_http_80_host: `${name}.example.com` } });
      await routable(`${name}.example.com`, name);
    }
    expect((await counts()).reloads).toBe(before.reloads);
    await engine.run({ name: 'a3', labels: { glue_http_80_host: 'a3.example.com' } });
    await routable('a3.example.com', 'a3');
    expect((await counts()).reloads).toBe(before.reloads + 1);
    for (const name of ['a1', 'a2', 'a3']) expect(await body(`${name}.example.com`)).toBe(`200 ${name}`);
    // The reload declared a fresh pool: 3 used + 2 spares.
    expect(readFileSync(configFile, 'utf8').match(/^backend glue_host_\d+$/gm)).toHaveLength(5);
    expect(readMap(hostMap)).toBe(
      'a1.example.com glue_host_0\na2.example.com glue_host_1\na3.example.com glue_host_2\n',
    );
  });

  it('after a forced reload (a prefix route added) the hosts still route, the prefix wins, and new hosts skip the reload again', async () => {
    const before = await counts();
    await engine.run({
      name: 'p1',
      labels: { glue_http_80_host: 'a1.example.com', glue_http_80_prefix: 'api', glue_http_80_strip_prefix: '1' },
    });
    await routable('a1.example.com', 'p1', '/api');
    expect((await counts()).reloads).toBe(before.reloads + 1);
    expect(await body('a1.example.com', '/')).toBe('200 a1');
    for (const name of ['a2', 'a3']) expect(await body(`${name}.example.com`)).toBe(`200 ${name}`);
    const mid = await counts();
    await engine.run({ name: 'a4', labels: { glue_http_80_host: 'a4.example.com' } });
    await routable('a4.example.com', 'a4');
    expect((await counts()).reloads).toBe(mid.reloads);
    expect(readMap(hostMap)).toContain('a4.example.com glue_host_3\n');
  });
});
