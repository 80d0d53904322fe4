#!/usr/bin/env node
/* global AbortController, Buffer, structuredClone */
// etcd publisher benchmark, against a private etcd 3.4 (testkit) with 1,000 synthetic containers.
// Prints figures and ratios against the goals:
//   start-up: publish 1,000 containers (record + HTTP index), none → all keys in etcd: goal ≤ 2,000 ms
//   steady state, one container event → its keys in etcd (handle() awaits the write): goal p95 ≤ 20 ms
//   a later none with nothing changed (full reconcile, no writes): goal ≤ 500 ms
//   CPU of the Glue process per steady-state event: goal ≤ 2 ms
//   record building alone (pure, per container): goal ≤ 0.1 ms
//   etcd killed, 100 containers change, etcd back: restart → keys exact: goal ≤ 10,000 ms
// GLUE_BENCH_CONTAINERS and GLUE_BENCH_EVENTS change the sizes.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { line, pct } from './lib/report.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { IniDocument, silentLogger } = await import(join(root, 'packages/core/dist/index.js'));
const { Publisher, containerEntries, createEtcdClient, Reader } = await import(
  join(root, 'packages/publisher-etcd/dist/internal.js')
);
const { startEtcd } = await import(join(root, 'packages/testkit/dist/index.js'));

const N = Number(process.env.GLUE_BENCH_CONTAINERS ?? 1000);
const EVENTS = Number(process.env.GLUE_BENCH_EVENTS ?? 500);

function container(i, startedAt = '2026-01-01T00:00:00Z') {
  const id = i.toString(16).padStart(8, '0').repeat(8);
  return {
    Id: id,
    Name: `/app-${i}`,
    Image: `sha256:${'ab'.repeat(32)}`,
    Config: {
      Image: 'registry.example.com/shop/app:1.2.3',
      Labels: {
        glue_http_80_host: `app${i % 50}.example.com`,
        glue_http_80_prefix: 'api',
        'com.example.team': 'shop',
        'com.example.tier': 'web',
      },
      ExposedPorts: { '80/tcp': {} },
    },
    State: {
      Status: 'running',
      Running: true,
      Paused: false,
      Restarting: false,
      Pid: 1000 + i,
      StartedAt: startedAt,
      Health: { Status: 'healthy' },
    },
    NetworkSettings: {
      IPAddress: `172.18.${i >> 8}.${i & 255}`,
      Ports: { '80/tcp': null },
      Networks: {
        bridge: {
          IPAddress: `172.18.${i >> 8}.${i & 255}`,
          IPPrefixLen: 16,
          Gateway: '172.18.0.1',
          MacAddress: '02:42:ac:12:00:02',
          Aliases: null,
        },
      },
    },
  };
}

function agentWith(containers) {
  const byId = new Map(containers.map((c) => [c.Id, c]));
  const abort = new AbortController();
  return {
    agent: {
      docker: {},
      logger: silentLogger(),
      signal: abort.signal,
      inspect: (id) => byId.get(id),
      containers: () => [...byId.values()],
      refresh: async (id) => byId.get(id),
      triggerNone: () => undefined,
      engine: () => ({ id: 'BENCH:ENGINE', name: 'bench-engine' }),
    },
    byId,
    abort,
  };
}

const ctx = (agent, action, id) => ({
  event: { action, id, attributes: {}, timeNano: 0n },
  container: agent.inspect(id),
  signal: agent.signal,
});

const etcd = await startEtcd();
let publisher;
const reader = new Reader({ endpoints: etcd.endpoint, prefix: '/bench' });
try {
  const all = Array.from({ length: N }, (_, i) => container(i));
  const { agent, byId } = agentWith(all);
  const file = '/bench/publish.ini';
  const ini = new IniDocument(
    file,
    `[handler]\nclass=@glue/publisher-etcd#Publisher\nevents=all,none\n[params]\nendpoints=${etcd.endpoint}\nprefix=/bench\nttl=30\nwrite-timeout=60\n`,
  );
  publisher = new Publisher(agent, file, ini);
  await publisher.start();

  // Start-up: the `none` after the engine inventory publishes everything.
  let t = performance.now();
  await publisher.handle('none', '', ctx(agent, 'none', ''));
  const startupMs = performance.now() - t;
  const keys = Object.keys(await etcd.keys('/bench/')).length;
  const sync = publisher.publishing;
  console.log(
    `etcd publisher: ${N} containers, ${keys} keys (record + HTTP index + owner) in ${sync.totals.txns} transactions`,
  );
  line(`start-up: publish ${N} containers`, startupMs, 'ms', 2000);

  // A later `none` with nothing changed: a full reconcile that reads the host's keys and writes nothing.
  const puts0 = sync.totals.puts;
  t = performance.now();
  await publisher.handle('none', '', ctx(agent, 'none', ''));
  line(`none again, nothing changed (reconcile, ${sync.totals.puts - puts0} writes)`, performance.now() - t, 'ms', 500);

  // Steady state: restart (new StartedAt) or stop one container at a time; each awaits its write.
  const latencies = [];
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let e = 0; e < EVENTS; e++) {
    const i = (e * 7919) % N;
    const id = all[i].Id;
    let action;
    if (e % 2 === 0) {
      byId.set(id, container(i, new Date(Date.UTC(2026, 0, 1, 0, 0, e)).toISOString()));
      action = 'start';
    } else {
      const stopped = structuredClone(byId.get(id));
      stopped.State.Running = false;
      stopped.State.Status = 'exited';
      byId.set(id, stopped);
      action = 'die';
    }
    t = performance.now();
    await publisher.handle(action, id, ctx(agent, action, id));
    latencies.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;
  line(`steady state: event → keys in etcd, p50 (${EVENTS} events)`, pct(latencies, 50), 'ms', 20);
  line('steady state: event → keys in etcd, p95', pct(latencies, 95), 'ms', 20);
  line('steady state: Glue CPU per event (user+system)', (cpu.user + cpu.system) / 1000 / EVENTS, 'ms', 2);
  console.log(
    `${'steady state: events per second, one at a time'.padEnd(52)} ${(EVENTS / (wallMs / 1000)).toFixed(0).padStart(10)}`,
  );

  // The floor: the same write as one bare etcd3 transaction, no Glue around it.
  const bare = createEtcdClient({ endpoints: [etcd.url] });
  const value = containerEntries(all[0], '/bench', 'bench-engine').entries.values().next().value;
  const bareCpu0 = process.cpuUsage();
  for (let e = 0; e < EVENTS; e++) {
    await bare.kv.txn({
      compare: [],
      success: [{ request_put: { key: Buffer.from(`/bare/${e % 50}`), value: Buffer.from(value + e) } }],
      failure: [],
    });
  }
  const bareCpu = process.cpuUsage(bareCpu0);
  bare.close();
  const perBare = (bareCpu.user + bareCpu.system) / 1000 / EVENTS;
  const perEvent = (cpu.user + cpu.system) / 1000 / EVENTS;
  console.log(
    `${'  floor: one bare etcd3 txn, CPU per call'.padEnd(52)} ${perBare.toFixed(1).padStart(10)} ms  (publisher / bare ${(perEvent / perBare).toFixed(2)})`,
  );

  // Pure record building.
  const reps = 20_000;
  t = performance.now();
  for (let r = 0; r < reps; r++) containerEntries(all[r % N], '/bench', 'bench-engine');
  line('record + index building per container (pure)', (performance.now() - t) / reps, 'ms', 0.1);

  // Outage: etcd killed, 100 containers change, etcd back.
  await etcd.kill();
  for (let i = 0; i < 100; i++) {
    const id = all[i].Id;
    if (i % 2 === 0) byId.delete(id);
    else byId.set(id, container(i, '2026-02-02T00:00:00Z'));
    await publisher.handle(i % 2 === 0 ? 'destroy' : 'start', id, ctx(agent, 'start', id));
  }
  t = performance.now();
  await etcd.restart();
  const etcdUpMs = performance.now() - t;
  const want = [...byId.values()].filter((c) => c.State.Running).length;
  for (;;) {
    const have = (await reader.containers({ host: 'bench-engine' })).length;
    if (have === want && sync.state === 'up') {
      const rec = (await reader.containers({ host: 'bench-engine' })).find((r) => r.id === all[1].Id);
      if (rec?.state?.startedAt === '2026-02-02T00:00:00Z') break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  line('etcd restart (100 changes while down) → keys exact', performance.now() - t, 'ms', 10_000);
  console.log(`${'  of which etcd itself took to come up'.padEnd(52)} ${etcdUpMs.toFixed(1).padStart(10)} ms`);
} finally {
  await publisher?.stop();
  await reader.close();
  await etcd.stop();
}
