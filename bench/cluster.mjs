#!/usr/bin/env node
// Cluster benchmark (issue 11): a simulated fleet in a private etcd 3.4, read by glue-balancer
// --source etcd with a managed HAProxy. Prints figures and ratios against the goals:
//   50 hosts x 200 containers in the index, as the publisher writes them (one lease per host):
//     balancer cold start -> all 10,000 servers in HAProxy: goal <= 2,000 ms
//   one change -> routable through the etcd watch (a real container on a real dockerd, a Glue agent
//     with the publisher), p50: goal <= 2x the local runtime-API path (glue-balancer --source docker
//     on the same engine, measured on the same containers in the same run)
//   a host's lease expiring with its 200 servers -> all gone from HAProxy: time, and reloads (goal 0)
//   balancer peak RSS (VmHWM) at 10,000 servers: goal <= 150 MB
// GLUE_BENCH_HOSTS, GLUE_BENCH_PER_HOST, GLUE_BENCH_RUNS change the sizes; GLUE_BENCH_NODE_FLAGS passes
// node flags to the etcd balancer (e.g. "--max-semi-space-size=4 --max-old-space-size=128").
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { line, pct } from './lib/report.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { containerEntries, createEtcdClient } = await import(join(root, 'packages/publisher-etcd/dist/internal.js'));
const { startDockerd, startEtcd, freePort, httpGet, requireBinary, unixCommand, pidsMentioning, stopPid } =
  await import(join(root, 'packages/testkit/dist/index.js'));
const BALANCER = join(root, 'packages/handler-haproxy/dist/bin/glue-balancer.js');
const AGENT = join(root, 'packages/publisher-etcd/test/fixtures/agent.mjs');

const HOSTS = Number(process.env.GLUE_BENCH_HOSTS ?? 50);
const PER_HOST = Number(process.env.GLUE_BENCH_PER_HOST ?? 200);
const RUNS = Number(process.env.GLUE_BENCH_RUNS ?? 30);
const VHOSTS = Math.max(1, Math.floor((HOSTS * PER_HOST) / 10));
const TOTAL = HOSTS * PER_HOST;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
requireBinary('haproxy');

function inspection(h, i) {
  const n = h * PER_HOST + i;
  const ip = `10.${h & 255}.${i >> 8}.${i & 255}`;
  return {
    Id: n.toString(16).padStart(64, '0'),
    Name: `/app-${i}`,
    Config: { Labels: { glue_http_80_host: `app${n % VHOSTS}.example.com` }, Image: 'shop/app:1' },
    State: { Status: 'running', Running: true, Paused: false, Pid: 100 + i, StartedAt: '2026-01-01T00:00:00Z' },
    NetworkSettings: { IPAddress: ip, Networks: { bridge: { IPAddress: ip, IPPrefixLen: 16 } } },
  };
}

/** Runs glue-balancer; `onLog` sees every JSON line. */
function balancer(args, onLog) {
  const flags = (process.env.GLUE_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [...flags, BALANCER, '-w', '--log-format', 'json', '--log-level', 'info', ...args],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  createInterface({ input: child.stderr }).on('line', (l) => {
    let o;
    try {
      o = JSON.parse(l);
    } catch {
      return;
    }
    onLog(o);
    if (process.env.GLUE_BENCH_VERBOSE || o.level >= 50) console.error(`  glue-balancer: ${o.msg}`);
  });
  return child;
}

/** Servers in HAProxy now (not in maintenance), by the host part of their name. */
async function serversByHost(socket) {
  const out = new Map();
  const text = await unixCommand(socket, 'show servers state', 10_000);
  for (const l of text.split('\n')) {
    const f = l.split(' ');
    if (f.length < 7 || !/^\d+$/.test(f[0])) continue;
    const host = /^([^:]+):/.exec(f[3])?.[1];
    if (host === undefined || (Number(f[6]) & 1) === 1) continue;
    out.set(host, (out.get(host) ?? 0) + 1);
  }
  return out;
}

const work = mkdtempSync(join(tmpdir(), 'glue-bench-cluster-'));
const etcd = await startEtcd();
const client = createEtcdClient({ endpoints: [etcd.url] });
const children = [];
let engine;
try {
  // ---- the fleet, written as the publisher writes it: one lease per host ---------------------
  const t0 = Date.now();
  const leases = [];
  for (let h = 0; h < HOSTS; h++) {
    const lease = client.lease(600, { autoKeepAlive: false });
    await lease.grant();
    leases.push(lease);
    const puts = [];
    for (let i = 0; i < PER_HOST; i++) {
      const { entries } = containerEntries(inspection(h, i), '/glue', `h${h}`);
      for (const [k, v] of entries) if (k.startsWith('/glue/http/')) puts.push([k, v]);
    }
    for (let j = 0; j < puts.length; j += 100)
      await Promise.all(puts.slice(j, j + 100).map(([k, v]) => lease.put(k).value(v).exec()));
  }
  console.log(
    `(fleet: ${HOSTS} hosts x ${PER_HOST} = ${TOTAL} index entries, ${VHOSTS} vhosts, written in ${Date.now() - t0} ms)`,
  );

  // ---- cold start --------------------------------------------------------------------------
  const clusterPort = await freePort();
  const clusterDir = join(work, 'cluster');
  const reloads = { n: 0 };
  let appliedAt = 0;
  let listedAt = 0;
  let collect = false;
  const phases = [];
  const spawnedAt = Date.now();
  const cluster = balancer(
    [
      '--source',
      'etcd',
      '--etcd-endpoints',
      etcd.endpoint,
      '--mode',
      'managed',
      '--config-file',
      join(clusterDir, 'haproxy.cfg'),
      '--http-bind',
      `127.0.0.1:${clusterPort}`,
    ],
    (o) => {
      if (String(o.msg).startsWith('HAProxy reloaded')) {
        reloads.n += 1;
        appliedAt ||= Date.now();
      }
      if (String(o.msg).includes('index entries listed')) listedAt ||= Date.now();
      if (String(o.msg).includes('through the runtime API') && collect) phases.push(o);
    },
  );
  children.push(cluster);
  const socket = join(clusterDir, 'haproxy-runtime.sock');
  for (;;) {
    if (cluster.exitCode !== null) throw new Error('glue-balancer --source etcd exited');
    if (appliedAt) {
      const n = [...(await serversByHost(socket)).values()].reduce((a, b) => a + b, 0);
      if (n >= TOTAL) break;
    }
    if (Date.now() - spawnedAt > 120_000) throw new Error('cold start: not all servers after 120 s');
    await sleep(20);
  }
  line(`cold start: spawn -> all ${TOTAL} servers in HAProxy`, appliedAt - spawnedAt, 'ms', 2000);
  console.log(`  (etcd listed ${listedAt - spawnedAt} ms after spawn; node start-up included)`);

  // ---- one change: etcd watch path against the local runtime-API path ----------------------
  engine = await startDockerd();
  const localPort = await freePort();
  const local = balancer(
    [
      '--docker-url',
      engine.url,
      '--mode',
      'managed',
      '--config-file',
      join(work, 'local', 'haproxy.cfg'),
      '--http-bind',
      `127.0.0.1:${localPort}`,
    ],
    () => {},
  );
  children.push(local);
  const agent = spawn(
    process.execPath,
    [AGENT, engine.url, JSON.stringify({ endpoints: etcd.endpoint, 'host-id': 'live', ttl: '10' })],
    { stdio: 'ignore' },
  );
  children.push(agent);
  const startTimes = new Map();
  const events = await engine.docker.getEvents({ filters: { type: ['container'], event: ['start'] } });
  events.on('data', (buf) => {
    for (const l of buf.toString().split('\n')) {
      if (!l.trim()) continue;
      const e = JSON.parse(l);
      startTimes.set(e.Actor?.Attributes?.name, Number(BigInt(e.timeNano) / 1_000_000n));
    }
  });
  const until = async (port, host, body, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await httpGet(`http://127.0.0.1:${port}/`, { host, timeoutMs: 3000 }).catch(() => undefined);
      if (r?.status === 200 && r.body.trim() === body) return Date.now();
      if (Date.now() > deadline) throw new Error(`${host} never served ${body} on ${port}`);
      await sleep(2);
    }
  };
  // When each live container's index entry reaches a watcher: splits the etcd path into publisher and balancer.
  const putAt = new Map();
  const watcher = await client.watch().prefix('/glue/http/live.example.com/').create();
  watcher.on('put', (kv) => {
    const name = JSON.parse(kv.value.toString()).name;
    if (!putAt.has(name)) putAt.set(name, Date.now());
  });
  await engine.run({ name: 'live-base', labels: { glue_http_80_host: 'live.example.com' } });
  await Promise.all([
    until(localPort, 'live.example.com', 'live-base'),
    until(clusterPort, 'live.example.com', 'live-base'),
  ]);
  await sleep(1500);
  const viaEtcd = [];
  const viaLocal = [];
  const publishing = [];
  const reloadsBefore = reloads.n;
  collect = true;
  for (let i = 0; i < RUNS; i++) {
    const name = `live${i}`;
    await engine.run({ name, labels: { glue_http_80_host: 'live.example.com' } });
    const [l, c] = await Promise.all([
      until(localPort, 'live.example.com', name),
      until(clusterPort, 'live.example.com', name),
    ]);
    viaLocal.push(l - startTimes.get(name));
    viaEtcd.push(c - startTimes.get(name));
    publishing.push(putAt.get(name) - startTimes.get(name));
    await engine.cli(['rm', '-f', name]);
  }
  const localP50 = pct(viaLocal, 50);
  line(`local runtime-API path p50 (${RUNS} runs, same containers)`, localP50, 'ms');
  line(`etcd watch path p50 (${RUNS} runs, ${TOTAL} servers loaded)`, pct(viaEtcd, 50), 'ms', 2 * localP50);
  line('etcd watch path p95', pct(viaEtcd, 95), 'ms');
  line('  of which: start event -> entry in etcd (the agent), p50', pct(publishing, 50), 'ms');
  await watcher.cancel();
  line('reloads of the etcd balancer during the runs (expect 0)', reloads.n - reloadsBefore, '');
  collect = false;
  const med = (k) =>
    pct(
      phases.map((o) => o[k] ?? 0),
      50,
    );
  console.log(
    `  breakdown of the etcd balancer's applies (medians): debounce wait ${med('waitedMs')} ms, slots + structure ${med('prepareMs')} ms, apply ${med('ms')} ms`,
  );

  // ---- a host's lease expires with its servers ---------------------------------------------
  await sleep(1500);
  const beforeExpiry = reloads.n;
  const revokedAt = Date.now();
  await leases[0].revoke();
  for (;;) {
    if (!(await serversByHost(socket)).has('h0')) break;
    if (Date.now() - revokedAt > 60_000) throw new Error('lease expiry: h0 still has servers after 60 s');
    await sleep(10);
  }
  line(`lease expiry: all ${PER_HOST} servers of one host gone`, Date.now() - revokedAt, 'ms');
  line('lease expiry: HAProxy reloads', reloads.n - beforeExpiry, '', 0);
  const status = readFileSync(`/proc/${cluster.pid}/status`, 'utf8');
  const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
  console.log(`  (RSS now ${Math.round(Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024)} MB)`);
  line(`glue-balancer --source etcd peak RSS (${TOTAL} servers)`, Number(hwm?.[1] ?? 0) / 1024, 'MB', 150);
  events.destroy?.();
} finally {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await new Promise((r) => c.once('exit', r));
    }
    if (c.exitCode !== 0)
      console.log(
        `  (${c.spawnargs.slice(1).join(' ').slice(0, 160)} exited with ${c.exitCode ?? c.signalCode} after SIGTERM)`,
      );
  }
  // A managed HAProxy must not outlive its balancer; whatever still runs on the bench's files is stopped.
  const left = pidsMentioning(work);
  if (left.length > 0) console.log(`  (stopping ${left.length} leftover process(es) of the bench: ${left.join(', ')})`);
  for (const pid of left) {
    console.log(`    ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 160)}`);
    await stopPid(pid, 'SIGKILL', 2000);
  }
  client.close();
  await engine?.stop();
  await etcd.stop();
  rmSync(work, { recursive: true, force: true });
}
