#!/usr/bin/env node
// Core benchmark: how fast Glue turns an engine event into a handler call, on a real private dockerd,
// and how much memory the container cache costs. Prints figures and ratios against the goals.
//   event → handler latency (engine timestamp to handle()): goal p95 ≤ 50 ms
//   1,000 and 10,000 cached inspections: goal ≤ 20 kB of heap per container
//   the ops endpoint (--http-addr) scraped every 100 ms: goal ≤ 5 % on the event → handler p50
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { line, pct } from './lib/report.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { createGlue, startOpsServer, silentLogger } = await import(join(root, 'packages/core/dist/index.js'));
const { ContainerStore } = await import(join(root, 'packages/core/dist/internal.js'));
const { startDockerd } = await import(join(root, 'packages/testkit/dist/index.js'));

const RUNS = Number(process.env.GLUE_BENCH_RUNS ?? 50);

const engine = await startDockerd();
/** Event → handler latencies of RUNS container starts; with `ops`, the ops endpoint runs and is scraped every 100 ms. */
async function measure(ops) {
  const latencies = [];
  const waiting = new Map();
  const glue = createGlue({
    dockerUrl: engine.url,
    handlers: [
      {
        name: 'bench',
        events: ['start'],
        handler: {
          handle: (_e, id, ctx) => {
            latencies.push(Date.now() - Number(ctx.event.timeNano / 1_000_000n));
            waiting.get(id)?.();
          },
        },
      },
    ],
  });
  const server = ops
    ? await startOpsServer('127.0.0.1:0', { metrics: glue.metrics, readiness: () => glue.readiness() }, silentLogger())
    : undefined;
  let scraping = server !== undefined;
  let scrapes = 0;
  const scraper = (async () => {
    while (scraping) {
      await (await fetch(`${server.url}/metrics`)).text();
      scrapes += 1;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await glue.start();
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < RUNS; i++) {
    const c = await engine.run({
      name: `bench-${ops ? 'ops' : 'plain'}-${i}`,
      cmd: ['sleep', '60'],
      waitRunning: false,
    });
    await new Promise((resolve) => {
      if (latencies.length > i) resolve();
      else waiting.set(c.id, resolve);
    });
    await engine.cli(['rm', '-f', c.id]);
  }
  scraping = false;
  await scraper;
  await glue.stop();
  await server?.close();
  return { latencies, scrapes };
}

try {
  // Alternating rounds, so that a drift of the engine's speed does not favour one side.
  const plain = [];
  const withOps = [];
  let scrapes = 0;
  for (let round = 0; round < 2; round++) {
    plain.push(...(await measure(false)).latencies);
    const o = await measure(true);
    withOps.push(...o.latencies);
    scrapes += o.scrapes;
  }
  console.log(`core: ${plain.length} + ${withOps.length} container starts on a private dockerd`);
  line('event → handler latency p50', pct(plain, 50), 'ms', 50);
  line('event → handler latency p95', pct(plain, 95), 'ms', 50);
  line(`event → handler p50, ops endpoint scraped (${scrapes} scrapes)`, pct(withOps, 50), 'ms', 50);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  line('  ops endpoint: p50 with / without (goal ≤ 1.05)', pct(withOps, 50) / Math.max(1, pct(plain, 50)), 'x', 1.05);
  line('  ops endpoint: mean with / without (ms-resolution noise)', mean(withOps) / mean(plain), 'x');
} finally {
  await engine.stop();
}

for (const n of [1_000, 10_000]) {
  globalThis.gc?.();
  const before = process.memoryUsage().heapUsed;
  const store = new ContainerStore();
  for (let i = 0; i < n; i++) {
    store.set({
      Id: i.toString(16).padStart(64, '0'),
      Name: `/c${i}`,
      State: { Status: 'running', Running: true },
      Config: {
        Labels: {
          glue_http_80_host: `c${i}.example.com`,
          glue_http_80_prefix: 'api/v1',
          'com.example.team': 'payments',
        },
        Image: 'glue-test/busybox',
        Env: ['PATH=/bin'],
      },
      NetworkSettings: {
        IPAddress: `172.17.${(i >> 8) & 255}.${i & 255}`,
        Networks: { bridge: { IPAddress: `172.17.${(i >> 8) & 255}.${i & 255}`, Gateway: '172.17.0.1' } },
      },
    });
  }
  globalThis.gc?.();
  const perContainer = (process.memoryUsage().heapUsed - before) / n / 1024;
  line(`cache: heap per container (${n})`, perContainer, 'kB', 20);
  if (store.all().length !== n) throw new Error('store lost containers');
}
