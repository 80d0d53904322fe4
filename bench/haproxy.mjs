#!/usr/bin/env node
// HAProxy handler benchmark (issue 3). Prints figures and ratios against the goals:
//   render + haproxy -c for 1,000 and 10,000 containers: goal ≤ 1,000 ms for 10,000
//   event-to-routable latency, `start` event -> first 200 from that container through HAProxy, p50/p95
//     over GLUE_BENCH_RUNS (default 50) runs: runtime-API path goal p50 ≤ 100 ms (a server joining a host,
//     and a new host taking a spare slot), reload path (a new prefix route) goal p50 ≤ 300 ms
//   burst: 100 containers (each its own host: every one is a structural change) started at once:
//     last start -> all routable goal ≤ 2,000 ms; HAProxy reloads goal ≤ 5
//   peak RSS of the glue-balancer process (VmHWM): goal ≤ 150 MB
// Live parts run a real dockerd (testkit) and glue-balancer -w --mode managed as a child process.
// GLUE_BENCH_RUNS, GLUE_BENCH_BURST change the sizes; GLUE_BENCH_SKIP_LIVE=1 runs the render part only;
// GLUE_BENCH_ONLY=burst runs the burst only, GLUE_BENCH_ONLY=runtime the runtime-API path only; GLUE_BENCH_SPARE sets glue-balancer's --spare-backends
// (default: its own default). New hosts join through the runtime API while a spare host slot is free.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { line, pct } from './lib/report.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { buildModel, Renderer, templateContext, checkConfig, hostMapText, placeModel, planSlots, slotHosts, DEFAULTS } =
  await import(join(root, 'packages/handler-haproxy/dist/internal.js'));
const { startDockerd, freePort, httpGet, requireBinary } = await import(join(root, 'packages/testkit/dist/index.js'));

const BURST_ONLY = process.env.GLUE_BENCH_ONLY === 'burst';
const RUNTIME_ONLY = process.env.GLUE_BENCH_ONLY === 'runtime';
const RUNS = BURST_ONLY ? 0 : Number(process.env.GLUE_BENCH_RUNS ?? 50);
const SPARE = process.env.GLUE_BENCH_SPARE ?? String(DEFAULTS.spareBackends);
const BURST = Number(process.env.GLUE_BENCH_BURST ?? 100);
/** Thrown to end the live part early (GLUE_BENCH_ONLY=runtime); the engine is still stopped. */
class Done extends Error {}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const haproxy = requireBinary('haproxy');

// ---- render + check -------------------------------------------------------------------------
function inspection(i, hosts) {
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const labels = { glue_http_80_host: `app${i % hosts}.example.com`, glue_http_80_weight: String(50 + (i % 100)) };
  if (i % 4 === 1) Object.assign(labels, { glue_http_80_prefix: `api/v${i % 3}`, glue_http_80_strip_prefix: '1' });
  return {
    Id: i.toString(16).padStart(64, '0'),
    Name: `/app-${i}`,
    Config: { Labels: labels },
    State: { Running: true, Paused: false, Status: 'running' },
    HostConfig: { NetworkMode: 'bridge' },
    NetworkSettings: { IPAddress: ip, Networks: { bridge: { IPAddress: ip } } },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'glue-bench-haproxy-'));
const renderer = new Renderer();
// As glue-balancer renders: host-only routes in slots routed by the host map, plus the spare pool.
const settings = {
  httpBind: '127.0.0.1:18999',
  tcpAddress: '*',
  runtimeSocket: join(dir, 'rt.sock'),
  hostMap: join(dir, 'bench.hosts.map'),
};
for (const [n, hosts] of process.env.GLUE_BENCH_SKIP_RENDER || BURST_ONLY || RUNTIME_ONLY
  ? []
  : [
      [1000, 100],
      [10_000, 1000],
      [10_000, 10_000],
    ]) {
  const containers = Array.from({ length: n }, (_, i) => inspection(i, hosts));
  let best = Infinity;
  let checkMs = Infinity;
  let size = 0;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    const model = buildModel(containers).model;
    const plan = planSlots(slotHosts(model), undefined, Number(SPARE), true);
    const text = renderer.render(templateContext(model, settings, placeModel(model, plan)));
    const mapText = hostMapText(plan);
    const renderMs = performance.now() - t0;
    const file = join(dir, `bench-${n}.cfg`);
    writeFileSync(settings.hostMap, mapText);
    writeFileSync(file, text);
    size = text.length;
    const r = await checkConfig(haproxy, file, 60_000);
    if (!r.ok) throw new Error(`haproxy -c failed for ${n}: ${r.output}`);
    best = Math.min(best, renderMs);
    checkMs = Math.min(checkMs, r.durationMs);
  }
  const label = `${n} containers / ${hosts} hosts`;
  line(`render (model + template), ${label}`, best, 'ms');
  line(`haproxy -c, ${label} (${(size / 1e6).toFixed(1)} MB)`, checkMs, 'ms');
  line(`render + check, ${label}`, best + checkMs, 'ms', n === 10_000 ? 1000 : undefined);
}
rmSync(dir, { recursive: true, force: true });
if (process.env.GLUE_BENCH_SKIP_LIVE) process.exit(0);
console.log(`load average now: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);

// ---- live: real dockerd + glue-balancer (managed HAProxy) ------------------------------------
const engine = await startDockerd();
const work = mkdtempSync(join(tmpdir(), 'glue-bench-lb-'));
let child;
try {
  const port = await freePort();
  child = spawn(
    process.execPath,
    [
      join(root, 'packages/handler-haproxy/dist/bin/glue-balancer.js'),
      '-w',
      '--docker-url',
      engine.url,
      '--mode',
      'managed',
      '--config-file',
      join(work, 'haproxy.cfg'),
      '--http-bind',
      `127.0.0.1:${port}`,
      '--spare-backends',
      SPARE,
      '--log-level',
      'debug',
      '--log-format',
      'json',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const counts = { reloads: 0, runtime: 0 };
  /** When glue-balancer logged a start event. */
  const startSeen = [];
  /** Every apply's time, for the burst's timeline. */
  const applies = [];
  // Where the time goes, from glue-balancer's own log fields.
  const phases = {
    eventAgeMs: [],
    runtime: { waitedMs: [], prepareMs: [], ms: [] },
    reload: { waitedMs: [], renderMs: [], checkMs: [], reloadMs: [] },
  };
  let collect = false;
  createInterface({ input: child.stderr }).on('line', (l) => {
    let o = {};
    try {
      o = JSON.parse(l);
    } catch {
      // not JSON
    }
    const keep = (into) => collect && Object.keys(into).forEach((k) => typeof o[k] === 'number' && into[k].push(o[k]));
    if (l.includes('HAProxy reloaded') || l.includes('through the runtime API'))
      applies.push({ at: Date.now(), reload: l.includes('HAProxy reloaded'), ops: o.ops });
    if (l.includes('HAProxy reloaded')) {
      counts.reloads += 1;
      keep(phases.reload);
    } else if (l.includes('through the runtime API')) {
      counts.runtime += 1;
      keep(phases.runtime);
    } else if (typeof o.eventAgeMs === 'number' && o.event === 'start') {
      if (collect) phases.eventAgeMs.push(o.eventAgeMs);
      startSeen.push(Date.now());
    } else if (process.env.GLUE_BENCH_VERBOSE || o.level >= 40) console.error(`  glue-balancer: ${o.msg ?? l}`);
  });
  const startTimes = new Map();
  const events = await engine.docker.getEvents({ filters: { type: ['container'], event: ['start'] } });
  events.on('data', (buf) => {
    for (const l of buf.toString().split('\n')) {
      if (!l.trim()) continue;
      const e = JSON.parse(l);
      startTimes.set(e.Actor?.Attributes?.name, Number(BigInt(e.timeNano) / 1_000_000n));
    }
  });
  const url = `http://127.0.0.1:${port}/`;
  const get = (host, path = '/') =>
    httpGet(`${url}${path.slice(1)}`, { host, timeoutMs: 5000 }).catch(() => ({ status: 0, body: '' }));
  const until = async (host, body, timeoutMs = 20_000, path = '/') => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await get(host, path);
      if (r.status === 200 && r.body.trim() === body) return Date.now();
      if (Date.now() > deadline) throw new Error(`${host} never served ${body}`);
      await sleep(2);
    }
  };
  await engine.run({ name: 'rt-base', labels: { glue_http_80_host: 'rt.example.com' } });
  await until('rt.example.com', 'rt-base');

  await sleep(1500);
  collect = true;
  const runtime = [];
  const ready = [];
  const runtimeBefore = counts.reloads;
  for (let i = 0; i < RUNS; i++) {
    const name = `rt${i}`;
    const c = await engine.run({ name, labels: { glue_http_80_host: 'rt.example.com' } });
    // The floor: when the container itself first answers (busybox sh + httpd starting), polled directly.
    const direct = (async () => {
      for (;;) {
        const r = await httpGet(`http://${c.ip}/`, { timeoutMs: 2000 }).catch(() => undefined);
        if (r?.status === 200) return Date.now();
        await sleep(2);
      }
    })();
    const t = await until('rt.example.com', name);
    runtime.push(t - startTimes.get(name));
    ready.push((await direct) - startTimes.get(name));
    await engine.cli(['rm', '-f', name]);
  }
  if (RUNS > 0) line(`runtime-API path p50 (${RUNS} runs)`, pct(runtime, 50), 'ms', 100);
  line('runtime-API path p95', pct(runtime, 95), 'ms');
  line('  (floor: start event -> container answers directly, p50)', pct(ready, 50), 'ms');
  // The goal of the leading-edge scheduler: an isolated change costs no debounce wait.
  if (RUNS > 0) line('runtime-API path p50 against 2x the floor', pct(runtime, 50), 'ms', 2 * pct(ready, 50));
  if (RUNS > 0) line('reloads during the runtime-API runs (expect 0)', counts.reloads - runtimeBefore, '');
  const med = (xs) => (xs.length ? pct(xs, 50) : NaN);
  if (RUNS > 0)
    console.log(
      `  breakdown (medians): engine event -> handler ${med(phases.eventAgeMs)} ms, debounce wait ${med(phases.runtime.waitedMs)} ms, slots + structure ${med(phases.runtime.prepareMs)} ms, apply ${med(phases.runtime.ms)} ms`,
    );
  phases.eventAgeMs.length = 0;
  if (RUNTIME_ONLY) throw new Done();

  // A new host alone takes a spare host slot (runtime API); a prefix route is structural (reload).
  const newHost = [];
  for (let i = 0; i < RUNS; i++) {
    const name = `nh${i}`;
    await engine.run({ name, labels: { glue_http_80_host: `${name}.example.com` } });
    const t = await until(`${name}.example.com`, name);
    newHost.push(t - startTimes.get(name));
    await engine.cli(['rm', '-f', name]);
    while ((await get(`${name}.example.com`)).status !== 503) await sleep(20);
  }
  if (RUNS > 0) line(`new host (spare slot, runtime API) p50 (${RUNS} runs)`, pct(newHost, 50), 'ms', 100);
  line('new host p95', pct(newHost, 95), 'ms');
  phases.eventAgeMs.length = 0;
  await sleep(1100);

  const reload = [];
  for (let i = 0; i < RUNS; i++) {
    const name = `rl${i}`;
    await engine.run({
      name,
      labels: { glue_http_80_host: `${name}.example.com`, glue_http_80_prefix: 'p', glue_http_80_strip_prefix: '1' },
    });
    const t = await until(`${name}.example.com`, name, 20_000, '/p');
    reload.push(t - startTimes.get(name));
    await engine.cli(['rm', '-f', name]);
    while ((await get(`${name}.example.com`, '/p')).status !== 503) await sleep(20);
    await sleep(1100); // past min-reload-interval: measure isolated structural changes
  }
  if (RUNS > 0) line(`reload path p50 (${RUNS} runs)`, pct(reload, 50), 'ms', 300);
  line('reload path p95', pct(reload, 95), 'ms');
  if (RUNS > 0)
    console.log(
      `  breakdown (medians; removals included, held by min-reload-interval): engine event -> handler ${med(phases.eventAgeMs)} ms, debounce wait ${med(phases.reload.waitedMs)} ms, render ${med(phases.reload.renderMs)} ms, haproxy -c ${med(phases.reload.checkMs)} ms, reload until the new worker answers ${med(phases.reload.reloadMs)} ms`,
    );
  collect = false;

  await sleep(1500);
  const reloadsBefore = counts.reloads;
  const runtimeBefore2 = counts.runtime;
  const names = Array.from({ length: BURST }, (_, i) => `burst${i}`);
  const t0 = Date.now();
  await Promise.all(names.map((name) => engine.run({ name, labels: { glue_http_80_host: `${name}.example.com` } })));
  const lastStart = Math.max(...names.map((n) => startTimes.get(n) ?? 0));
  let pending = [...names];
  let allAt = 0;
  while (pending.length > 0) {
    const results = await Promise.all(
      pending.map(async (n) => ((await get(`${n}.example.com`)).body.trim() === n ? undefined : n)),
    );
    pending = results.filter(Boolean);
    allAt = Date.now();
    if (allAt - lastStart > 60_000) throw new Error(`burst: ${pending.length} never routable`);
    if (pending.length > 0) await sleep(5);
  }
  await sleep(1500);
  line(`burst: ${BURST} containers started in`, lastStart - t0, 'ms');
  line('burst: last start -> all routable', allAt - lastStart, 'ms', 2000);
  line('burst: HAProxy reloads', counts.reloads - reloadsBefore, '', 5);
  console.log(`  (burst: spare-backends ${SPARE}, ${counts.runtime - runtimeBefore2} runtime-API applies)`);
  const lastEvent = Math.max(0, ...startSeen);
  if (lastEvent)
    console.log(`  (last start event seen by glue-balancer ${lastEvent - lastStart} ms after the engine's timestamp)`);
  const tail = applies
    .filter((a) => a.at >= lastStart - 5000)
    .map((a) => `${a.reload ? 'reload' : `runtime(${a.ops})`}@${a.at - lastStart}ms`);
  console.log(`  (applies from 5 s before the last start, relative to it: ${tail.join(', ')})`);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
  line('glue-balancer peak RSS (VmHWM)', Number(hwm?.[1] ?? 0) / 1024, 'MB', 150);
  console.log(`(total: ${counts.reloads} reloads, ${counts.runtime} runtime-API applies)`);
  events.destroy?.();
} catch (err) {
  if (!(err instanceof Done)) throw err;
} finally {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  await engine.stop();
  rmSync(work, { recursive: true, force: true });
}
