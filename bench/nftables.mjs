#!/usr/bin/env node
// nftables handler benchmark (issue 15). Prints figures and ratios:
//   one transaction for 1, 100 and 1,000 services of 2 endpoints each, median of 5: the whole table
//     (the first run after a start), and one endpoint joining or leaving one service (every run after
//     it: only what changed): goal ≤ 100 ms for the latter at 1,000
//   event -> first datagram answered by the new backend (kernel path), p50 over GLUE_BENCH_RUNS (default
//     20), side by side with the HAProxy TCP path for the same container (event -> first TCP answer
//     through HAProxy): goal kernel p50 ≤ HAProxy p50
// Everything runs in a network namespace the bench makes (dockerd, Glue with both handlers, HAProxy,
// the clients), never on the host's rules. GLUE_BENCH_SKIP_LIVE=1 runs the transaction part only.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { line, pct } from './lib/report.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { renderFull, renderPatch, tableSpec } = await import(join(root, 'packages/handler-nftables/dist/index.js'));
const { createNetns, startDockerd, tempDir, requireBinary, waitFor } = await import(
  join(root, 'packages/testkit/dist/index.js')
);
const RUNS = Number(process.env.GLUE_BENCH_RUNS ?? 20);
const GLUE_BIN = join(root, 'packages/cli/dist/bin/glue.js');
const median = (xs) => pct(xs, 50);

requireBinary('nft');
requireBinary('haproxy');
const ns = await createNetns('gluebench');
const tmp = await tempDir('glue-bench-nft-');
let engine;
let glue;
try {
  // ---- one transaction for N services ----------------------------------------------------------
  const settings = { table: 'glue', family: 'ip', listen: [ns.address], masquerade: false };
  const model = (n) => ({
    services: Array.from({ length: n }, (_, i) => ({
      protocol: 'udp',
      port: 10000 + i,
      endpoints: [0, 1].map((k) => ({
        id: `${k}${i}`.padStart(64, 'a'),
        name: `svc${i}-${k}`,
        address: `172.29.${i >> 6}.${(i & 63) * 2 + k + 1}`,
        port: 53,
        weight: 100 + k,
      })),
    })),
  });
  for (const n of [1, 100, 1000]) {
    const m = model(n);
    const renders = [];
    const applies = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const script = renderFull(tableSpec(m, settings), settings);
      const t1 = performance.now();
      await ns.exec('nft', ['-f', '-'], { input: script });
      applies.push(performance.now() - t1);
      renders.push(t1 - t0);
    }
    line(`${n} service(s): render the whole table`, median(renders), 'ms');
    line(`${n} service(s): nft -f, the whole table`, median(applies), 'ms');
    // What every event after the first sends: one endpoint joins (then leaves) one service.
    const spec = tableSpec(m, settings);
    const grown = JSON.parse(JSON.stringify(m));
    grown.services[0].endpoints.push({
      id: 'f'.repeat(64),
      name: 'extra',
      address: '172.28.0.9',
      port: 53,
      weight: 100,
    });
    const bigger = tableSpec(grown, settings);
    const patches = [];
    for (let i = 0; i < 6; i++) {
      const script = i % 2 === 0 ? renderPatch(spec, bigger, settings) : renderPatch(bigger, spec, settings);
      const t0 = performance.now();
      await ns.exec('nft', ['-f', '-'], { input: script });
      patches.push(performance.now() - t0);
    }
    line(`${n} service(s): nft -f, one endpoint joins or leaves`, median(patches), 'ms', n === 1000 ? 100 : undefined);
  }
  await ns.exec('nft', ['delete', 'table', 'ip', 'glue']);

  if (process.env.GLUE_BENCH_SKIP_LIVE !== '1') {
    // ---- event -> first answer: kernel UDP vs HAProxy TCP ---------------------------------------
    engine = await startDockerd({ netns: ns.name });
    const conf = join(tmp.path, 'conf');
    mkdirSync(conf);
    const events = 'events=start,die,kill,stop,pause,unpause,health_status,destroy,none';
    writeFileSync(
      join(conf, 'l4.ini'),
      `[handler]\nclass=@glue/handler-nftables#NftablesHandler\n${events}\n\n[params]\nlisten=${ns.address}\n`,
    );
    writeFileSync(
      join(conf, 'lb.ini'),
      `[handler]\nclass=@glue/handler-haproxy#HAProxyHandler\n${events}\n\n[params]\nmode=managed\nconfig-file=${join(tmp.path, 'haproxy.cfg')}\nhttp-bind=none\ntcp-address=${ns.address}\n`,
    );
    const [file, args] = ns.argv(process.execPath, [GLUE_BIN, '-w', '-c', conf, '--docker-url', engine.url]);
    glue = spawn(file, args, { stdio: ['ignore', 'ignore', 'ignore'] });
    await waitFor(
      async () => (await ns.exec('nft', ['list', 'table', 'ip', 'glue'], { reject: false })).includes('Glue'),
      {
        timeoutMs: 20_000,
        what: "Glue's table",
      },
    );
    // The probes run inside the namespace: this process stays outside, so they go through a helper.
    const probe = `
      const [kind, host, port, want] = process.argv.slice(1);
      const t0 = Date.now();
      const { createSocket } = require('node:dgram');
      const { connect } = require('node:net');
      const once = () => new Promise((resolve) => {
        if (kind === 'udp') {
          const s = createSocket('udp4');
          const t = setTimeout(() => { s.close(); resolve(''); }, 20);
          s.on('message', (m) => { clearTimeout(t); s.close(); resolve(m.toString().trim()); });
          s.on('error', () => { clearTimeout(t); s.close(); resolve(''); });
          s.send('x', Number(port), host);
        } else {
          let got = '';
          const c = connect(Number(port), host, () => c.write('GET / HTTP/1.0\\r\\n\\r\\n'));
          c.setTimeout(200, () => c.destroy());
          c.on('data', (d) => (got += d));
          c.on('close', () => resolve(got.split('\\r\\n\\r\\n')[1]?.trim() ?? ''));
          c.on('error', () => resolve(''));
        }
      });
      (async () => {
        for (;;) {
          if ((await once()) === want) { process.stdout.write(String(Date.now())); return; }
          if (Date.now() - t0 > 15000) { process.stdout.write('timeout'); return; }
          await new Promise((r) => setTimeout(r, 2));
        }
      })();`;
    // When the engine reported each start (the event both handlers act on).
    const startedAt = new Map();
    const stream = await engine.docker.getEvents({ filters: { type: ['container'], event: ['start'] } });
    let pending = '';
    stream.on('data', (chunk) => {
      pending += chunk.toString();
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const ev = JSON.parse(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        startedAt.set(ev.Actor?.Attributes?.name, Date.now());
      }
    });
    const ECHO =
      "const s = require('node:dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(process.env.GLUE_PAGE + '\\n', r.port, r.address)); s.bind(53);";
    /** Starts one container serving UDP 53 and TCP 80; ms from its start event to its first answer on each path. */
    const measure = async (name, udpPort, tcpPort) => {
      // Both apps start before the container's start event, so the first answer is the rules' doing.
      const c = await engine.docker.createContainer({
        name,
        Image: 'glue-test/busybox',
        Cmd: ['sh', '-c', `echo ${name} > /www/index.html && httpd -p 80 -h /www && exec /usr/bin/node -e "${ECHO}"`],
        Env: [`GLUE_PAGE=${name}`],
        Labels: { glue_udp_53_port: String(udpPort), glue_tcp_80_port: String(tcpPort) },
        HostConfig: { Binds: ['/usr:/usr:ro', '/usr/lib:/lib:ro', '/usr/lib64:/lib64:ro'] },
      });
      const probes = [
        ['udp', udpPort],
        ['tcp', tcpPort],
      ].map(([kind, port]) => ns.exec(process.execPath, ['-e', probe, kind, ns.address, String(port), name]));
      await c.start();
      const answers = await Promise.all(probes);
      await waitFor(() => startedAt.has(name), { what: `the start event of ${name}` });
      return answers.map((a) => (a === 'timeout' ? undefined : Math.max(0, Number(a) - startedAt.get(name))));
    };
    const report = (what, runs) => {
      const udp = runs.map((r) => r[0]).filter((x) => x !== undefined);
      const tcp = runs.map((r) => r[1]).filter((x) => x !== undefined);
      line(`${what}: kernel UDP, event -> first datagram, p50 (${udp.length})`, median(udp), 'ms');
      line(`${what}: kernel UDP, p95`, pct(udp, 95), 'ms');
      line(`${what}: HAProxy TCP, event -> first answer, p50 (${tcp.length})`, median(tcp), 'ms');
      line(`${what}: HAProxy TCP, p95`, pct(tcp, 95), 'ms');
      line(`${what}: kernel / HAProxy p50 (goal ≤ 1)`, median(udp) / median(tcp), 'x', 1);
    };
    // A new service per container: a table transaction vs a HAProxy reload (a new TCP frontend).
    const fresh = [];
    for (let i = 0; i < RUNS; i++) fresh.push(await measure(`new-${i}`, 6000 + i, 7000 + i));
    report('new port', fresh);
    // Containers joining one service: a table transaction vs the runtime API (a server added).
    const joined = [];
    for (let i = 0; i < RUNS; i++) joined.push(await measure(`join-${i}`, 6999, 7999));
    report('joins a port', joined);
    stream.destroy();
  }
} finally {
  if (glue && glue.exitCode === null) {
    const exited = new Promise((r) => glue.once('exit', r));
    glue.kill('SIGTERM');
    await exited;
  }
  await engine?.stop();
  await ns.delete();
  await tmp.cleanup();
}
