#!/usr/bin/env node
// OVS handler benchmark on a real private dockerd and a private Open vSwitch (userspace bridge).
// Prints figures and ratios against the goals (proposed with the handler, issue 5):
//   attach on `start` (veth, namespace setup, add-port, read-back): goal p95 ≤ 300 ms
//   detach on `die` (find by external_ids + del-port, read-back):    goal p95 ≤ 150 ms
//   start-up reconcile, 20 running containers to plug + 20 stale ports: goal ≤ 3000 ms
// and, for reference, docker-glue's way (`ovs-docker add-port` / `del-ports`) on the same machine.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { line, pct } from './lib/report.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { createGlue, IniDocument } = await import(join(root, 'packages/core/dist/index.js'));
const { startDockerd, startOvs, tempDir } = await import(join(root, 'packages/testkit/dist/index.js'));
const { OVSHandler, execaRunner } = await import(join(root, 'packages/handler-ovs/dist/index.js'));

// Every command the handler runs, timed, to show where an attach spends its time.
const commandTimes = new Map();
const timedRunner = async (file, args, options) => {
  const t = performance.now();
  try {
    return await execaRunner(file, args, options);
  } finally {
    const verbs = [...new Set(args.filter((a) => ['find', 'add-port', 'del-port', 'list'].includes(a)))];
    const verb =
      file === 'ovs-vsctl'
        ? `ovs-vsctl ${verbs.join('+') || '?'}`
        : file === 'nsenter'
          ? `nsenter ${args[4]}`
          : `${file} ${args.includes('-batch') ? '-batch' : args.slice(0, 2).join(' ')}`;
    commandTimes.set(verb, [...(commandTimes.get(verb) ?? []), performance.now() - t]);
  }
};

const run = promisify(execFile);
const RUNS = Number(process.env.GLUE_BENCH_RUNS ?? 20);
const NEXT_TIMEOUT_MS = Number(process.env.GLUE_BENCH_RUN_TIMEOUT_MS ?? 60_000);

const engine = await startDockerd();
const ovs = await startOvs();
const work = await tempDir('glue-bench-ovs-');
const bridge = ovs.uniqueName('govb');
let glue;
try {
  await ovs.addBridge(bridge);
  const engineId = (await engine.docker.info()).ID;
  const iniText = `[handler]\nclass=@glue/handler-ovs#OVSHandler\nevents=start,die,destroy,none\n\n[params]\novs-bridge=${bridge}\novs-db=${ovs.db}\n`;
  const iniPath = join(work.path, 'ovs.ini');
  writeFileSync(iniPath, iniText);
  const doc = new IniDocument(iniPath, iniText);
  const runs = [];
  const waiters = [];
  const startGlue = async () => {
    const glue = createGlue({
      dockerUrl: engine.url,
      handlers: [
        {
          name: 'ovs.ini',
          events: ['start', 'die', 'destroy', 'none'],
          handler: (agent) => new OVSHandler(agent, doc.path, doc, { runner: timedRunner }),
        },
      ],
    });
    glue.on('handler', (r) => {
      runs.push(r);
      for (const w of [...waiters]) {
        if (!w.match(r)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(r);
      }
    });
    await glue.start();
    return glue;
  };
  // Waits for a handler run; one that never comes fails the bench after NEXT_TIMEOUT_MS instead of hanging it.
  const next = (match, what = String(match)) => {
    const found = runs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        const i = waiters.indexOf(waiter);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`no handler run ${what} within ${NEXT_TIMEOUT_MS} ms (${runs.length} runs seen)`));
      }, NEXT_TIMEOUT_MS);
      waiters.push(waiter);
    });
  };
  const check = (r) => {
    if (!r.ok) throw new Error(`${r.event} ${r.containerName} failed: ${String(r.error)}`);
    return r;
  };

  // attach / detach, one container at a time
  glue = await startGlue();
  await next((r) => r.event === 'none', 'none at start-up');
  const attach = [];
  const detach = [];
  for (let i = 0; i < RUNS; i++) {
    const c = await engine.run({
      network: 'none',
      labels: { glue_ovs_ip: `10.205.${i >> 8}.${(i % 250) + 2}/16` },
      cmd: ['sleep', '300'],
    });
    attach.push(
      check(await next((r) => r.event === 'start' && r.containerId === c.id, `start of ${c.name}`)).durationMs,
    );
    await engine.cli(['rm', '-f', c.id]);
    detach.push(check(await next((r) => r.event === 'die' && r.containerId === c.id, `die of ${c.name}`)).durationMs);
    await next((r) => r.event === 'destroy' && r.containerId === c.id, `destroy of ${c.name}`);
  }
  await glue.stop();
  console.log(`ovs: ${RUNS} containers attached and removed one at a time (userspace bridge)`);
  line('attach on start p50', pct(attach, 50), 'ms', 300);
  line('attach on start p95', pct(attach, 95), 'ms', 300);
  line('detach on die p50', pct(detach, 50), 'ms', 150);
  line('detach on die p95', pct(detach, 95), 'ms', 150);
  for (const [verb, times] of [...commandTimes].sort())
    line(`  command ${verb} p50 (n=${times.length})`, pct(times, 50), 'ms');

  // start-up reconcile: 20 running containers without ports, 20 stale ports of this engine
  const N = 20;
  const started = [];
  for (let i = 0; i < N; i++)
    started.push(
      await engine.run({ network: 'none', labels: { glue_ovs_ip: `10.206.0.${i + 2}/24` }, cmd: ['sleep', '300'] }),
    );
  for (let i = 0; i < N; i++) {
    const name = `govz${i}${ovs.uniqueName('')}`.slice(0, 15);
    await ovs.vsctl([
      'add-port',
      bridge,
      name,
      '--',
      'set',
      'Interface',
      name,
      `external_ids:container_id="${i.toString(16).padStart(64, '0')}"`,
      `external_ids:glue_engine="${engineId}"`,
    ]);
  }
  const before = runs.length;
  glue = await startGlue();
  const none = check(
    await next((r, idx = runs.indexOf(r)) => idx >= before && r.event === 'none', 'none after restart (reconcile)'),
  );
  const ports = await ovs.ports(bridge);
  if (ports.length !== N) throw new Error(`expected ${N} ports after reconcile, found ${ports.length}`);
  line(`start-up reconcile (${N} to plug, ${N} stale)`, none.durationMs, 'ms', 3000);
  const again = runs.length;
  glue.agent.triggerNone();
  const idle = check(
    await next((r, idx = runs.indexOf(r)) => idx >= again && r.event === 'none', 'none with nothing to do'),
  );
  line(`reconcile with nothing to do (${N} plugged)`, idle.durationMs, 'ms');
  await glue.stop();
  for (const c of started) await engine.cli(['rm', '-f', c.id]);
  for (const p of await ovs.ports(bridge)) await ovs.vsctl(['--if-exists', 'del-port', p.name]);

  // reference: docker-glue's ovs-docker, same machine, same switch
  const env = { ...process.env, OVS_RUNDIR: ovs.dir, DOCKER_HOST: engine.url };
  const add = [];
  const del = [];
  for (let i = 0; i < Math.min(RUNS, 10); i++) {
    const c = await engine.run({ network: 'none', cmd: ['sleep', '300'] });
    let t = performance.now();
    await run('ovs-docker', ['add-port', bridge, 'eth0', c.id, '--ipaddress=10.207.0.2/24'], { env });
    add.push(performance.now() - t);
    t = performance.now();
    await run('ovs-docker', ['del-ports', bridge, c.id], { env });
    del.push(performance.now() - t);
    await engine.cli(['rm', '-f', c.id]);
  }
  line('reference: ovs-docker add-port p50', pct(add, 50), 'ms');
  line('reference: ovs-docker del-ports p50', pct(del, 50), 'ms');
  line('ratio attach p50 / ovs-docker add-port p50', pct(attach, 50) / pct(add, 50), 'x');
  console.log(
    `load average during the run: ${(await import('node:os'))
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} (${(await import('node:os')).cpus().length} CPUs)`,
  );
} finally {
  // A failed wait leaves a daemon running: stop it before its engine (bounded: a stop right after start can hang).
  if (glue) {
    const stopped = await Promise.race([
      glue.stop().then(
        () => true,
        () => true,
      ),
      new Promise((r) => setTimeout(r, 10_000, false).unref()),
    ]);
    if (!stopped) console.error('glue.stop() still running after 10 s: going on with the clean-up');
  }
  await engine.stop().catch(() => undefined);
  await ovs.stop();
  await work.cleanup();
}
