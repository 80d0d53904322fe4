/**
 * Hitless: a client sends a steady stream of requests to one route while 50 other containers, each
 * on its own host, start and stop. With no spare host slots every new host is structural and
 * HAProxy reloads (removals go through the runtime API). Zero failures.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type DockerEngine,
  freePort,
  httpGet,
  requireBinary,
  startDockerd,
  steadyClient,
  tempDir,
  waitFor,
} from '@glue/testkit';
import { startBalancer, type RunningBalancer } from './helpers.js';

const CHURN = 50;
let engine: DockerEngine;
let dir: { path: string; cleanup: () => Promise<void> };
let lb: RunningBalancer;
let port: number;

beforeAll(async () => {
  requireBinary('haproxy');
  engine = await startDockerd();
  dir = await tempDir('glue-lb-hitless-');
  port = await freePort();
  lb = await startBalancer([
    '--docker-url',
    engine.url,
    '--mode',
    'managed',
    '--config-file',
    `${dir.path}/haproxy.cfg`,
    '--http-bind',
    `127.0.0.1:${port}`,
    '--debounce-ms',
    '20',
    '--spare-backends',
    '0',
  ]);
});

afterAll(async () => {
  await lb?.stop();
  await engine?.stop();
  await dir?.cleanup();
});

it(`zero failed requests while ${CHURN} containers start and stop around a steady route`, async () => {
  await engine.run({ name: 'steady', labels: { glue_http_80_host: 'steady.example.com' } });
  const url = `http://127.0.0.1:${port}/`;
  await waitFor(async () => (await httpGet(url, { host: 'steady.example.com' })).status === 200, {
    timeoutMs: 15_000,
    what: 'the steady route',
  });
  const reloadsBefore = lb.handler.stats.reloads;
  const client = steadyClient(url, 'steady.example.com');
  const names = Array.from({ length: CHURN }, (_, i) => `churn${i}`);
  for (let i = 0; i < names.length; i += 5) {
    await Promise.all(
      names.slice(i, i + 5).map((name) => engine.run({ name, labels: { glue_http_80_host: `${name}.example.com` } })),
    );
  }
  await waitFor(async () => (await httpGet(url, { host: `churn${CHURN - 1}.example.com` })).status === 200, {
    timeoutMs: 20_000,
    what: 'the last churn container routable',
  });
  for (let i = 0; i < names.length; i += 5) {
    await Promise.all(names.slice(i, i + 5).map((name) => engine.cli(['rm', '-f', name])));
  }
  await waitFor(async () => (await httpGet(url, { host: `churn${CHURN - 1}.example.com` })).status === 503, {
    timeoutMs: 20_000,
    what: 'the churn routes gone',
  });
  const result = await client.stop();
  const reloads = lb.handler.stats.reloads - reloadsBefore;
  console.log(
    `hitless: ${result.ok} ok, ${result.failed} failed, ${reloads} reloads, ${lb.handler.stats.runtimeApplies} runtime applies`,
  );
  expect(result.failures).toEqual([]);
  expect(result.failed).toBe(0);
  expect(result.ok).toBeGreaterThan(100);
  expect(reloads).toBeGreaterThan(1);
  expect(Object.keys(result.bodies)).toEqual(['steady']);
});
