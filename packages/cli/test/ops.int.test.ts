/**
 * The ops endpoints of `glue -w --http-addr` and `glue-balancer -w --http-addr`, as an operator's
 * monitoring sees them: a real Prometheus scrapes both and its query API returns the series after a
 * known sequence of events; /readyz is 503 while the engine is gone and 200 once they are back on it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chmodSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DockerEngine,
  freePort,
  type PrometheusServer,
  startDockerd,
  startPrometheus,
  tempDir,
  waitFor,
} from '@glue/testkit';
import { type GlueProcess, startGlue } from './glue-process.js';

let engine: DockerEngine;
let tmp: { path: string; cleanup: () => Promise<void> };
let glue: GlueProcess;
let prometheus: PrometheusServer;
let ops: string;
let balancerOps: string;
let balancer: ChildProcess;
let out: string;
const BALANCER_BIN = fileURLToPath(new URL('../../handler-haproxy/dist/bin/glue-balancer.js', import.meta.url));

const get = async (path: string, base = ops): Promise<{ status: number; body: string }> => {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.text() };
};
const lines = (): string[] => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n') : []);

beforeAll(async () => {
  [engine, tmp] = await Promise.all([startDockerd(), tempDir('glue-ops-')]);
  const conf = join(tmp.path, 'conf');
  mkdirSync(conf);
  out = join(tmp.path, 'record');
  writeFileSync(join(conf, 'record.sh'), `#!/bin/sh\necho "$2 $3" >> ${out}\n`);
  chmodSync(join(conf, 'record.sh'), 0o755);
  writeFileSync(
    join(conf, 'record.ini'),
    '[handler]\nclass=@glue/handler-exec#ScriptHandler\nevents=start,none\n\n[params]\nscript=record.sh\n',
  );
  const port = await freePort();
  ops = `http://127.0.0.1:${port}`;
  glue = startGlue([
    '-w',
    '-c',
    conf,
    '--docker-url',
    engine.url,
    '--http-addr',
    `127.0.0.1:${port}`,
    '--log-format',
    'json',
  ]);
  await waitFor(async () => (await get('/readyz')).status === 200, {
    timeoutMs: 20_000,
    what: `/readyz 200 (${glue.stderr()})`,
  });
  const [balancerPort, httpPort] = [await freePort(), await freePort()];
  balancerOps = `http://127.0.0.1:${balancerPort}`;
  balancer = spawn(
    process.execPath,
    [
      BALANCER_BIN,
      '-w',
      '--docker-url',
      engine.url,
      '--mode',
      'managed',
      '--config-file',
      join(tmp.path, 'lb', 'haproxy.cfg'),
      '--http-bind',
      `127.0.0.1:${httpPort}`,
      '--http-addr',
      `127.0.0.1:${balancerPort}`,
    ],
    { stdio: 'ignore' },
  );
  await waitFor(async () => (await get('/readyz', balancerOps)).status === 200, {
    timeoutMs: 20_000,
    what: 'glue-balancer /readyz 200',
  });
  prometheus = await startPrometheus([`127.0.0.1:${port}`, `127.0.0.1:${balancerPort}`]);
  await prometheus.targetsUp();
});

afterAll(async () => {
  if (balancer?.exitCode === null) {
    const exited = new Promise((r) => balancer.once('exit', r));
    balancer.kill('SIGTERM');
    await exited;
  }
  await glue?.stop();
  await prometheus?.stop();
  await engine?.stop();
  await tmp?.cleanup();
});

/** The value of one series, once Prometheus has it at `want` (scrapes come every second). */
async function series(promql: string, want: (v: number) => boolean, what: string): Promise<number> {
  return waitFor(
    async () => {
      const [first] = await prometheus.query(promql);
      return first !== undefined && want(first.value) ? first.value : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 250, what: `${what} (${promql})` },
  );
}

describe('glue -w --http-addr', () => {
  it('answers /livez, /readyz (?verbose lists the checks), 404 elsewhere, 405 for POST', async () => {
    expect(await get('/livez')).toEqual({ status: 200, body: 'ok\n' });
    expect(await get('/readyz')).toEqual({ status: 200, body: 'ok\n' });
    expect((await get('/readyz?verbose')).body).toBe('[+] watching ok\n[+] engine ok\n[+] inventory ok\nok\n');
    expect((await get('/nope')).status).toBe(404);
    const post = await fetch(`${ops}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('Prometheus scrapes it: runs, event -> handled samples, engine and build info after three starts', async () => {
    await series('min(glue_engine_connected)', (v) => v === 1, 'engines connected');
    await series('count(glue_build_info{version=~".+"})', (v) => v === 2, 'build info of glue and glue-balancer');
    expect((await get('/readyz?verbose', balancerOps)).body).toMatch(/\[\+\] glue-balancer ok\nok\n$/);
    const runs = 'sum(glue_handler_runs_total{handler="record.ini",result="ok"})';
    const handled = 'sum(glue_event_to_handled_seconds_count{handler="record.ini"})';
    const starts = 'sum(glue_engine_events_total{action="start"})';
    const before = await series(runs, (v) => v >= 1, 'the none run');
    const handledBefore = (await prometheus.query(handled))[0]?.value ?? 0;
    const startsBefore = (await prometheus.query(starts))[0]?.value ?? 0;
    for (let i = 0; i < 3; i++)
      await engine.run({ name: `ops-${i}`, labels: { glue_http_80_host: 'ops.example.com' } });
    await waitFor(() => lines().filter((l) => l.startsWith('start ')).length === 3, { what: 'three start runs' });
    await series(runs, (v) => v === before + 3, 'runs +3');
    await series(handled, (v) => v === handledBefore + 3, 'event -> handled +3');
    // Both daemons watch the engine: each counts the three starts.
    await series(starts, (v) => v === startsBefore + 6, 'start events +3 on each');
    const [p99] = await prometheus.query(
      'histogram_quantile(0.99, sum by (le) (glue_event_to_handled_seconds_bucket{handler="record.ini"}))',
    );
    expect(p99?.value).toBeGreaterThan(0);
    expect(p99?.value).toBeLessThan(5);
    // glue-balancer: its HAProxy runs the three servers, its last apply succeeded.
    await series('glue_haproxy_servers{handler="glue-balancer",state="ready"}', (v) => v === 3, 'three servers');
    await series('glue_haproxy_last_apply_success{handler="glue-balancer"}', (v) => v === 1, 'last apply ok');
    await series('sum(glue_haproxy_applies_total{handler="glue-balancer"})', (v) => v >= 1, 'applies');
    await series('sum(glue_handler_runs_total{handler="glue-balancer",result="ok"})', (v) => v >= 4, 'balancer runs');
    // Bounded labels: no series names a container.
    const names = await prometheus.query('count by (__name__) ({__name__=~"glue_.+", container!=""})');
    expect(names).toEqual([]);
  });

  it('/readyz is 503 naming the engine while it is gone, 200 once Glue is back on it', async () => {
    await engine.kill();
    await waitFor(async () => (await get('/readyz')).status === 503, { timeoutMs: 15_000, what: '/readyz 503' });
    expect((await get('/readyz')).body).toMatch(/^\[-\] engine: no event stream from unix:\/\/.*\nnot ready\n$/);
    await waitFor(async () => (await get('/readyz', balancerOps)).status === 503, {
      what: 'glue-balancer /readyz 503',
    });
    await series('max(glue_engine_connected)', (v) => v === 0, 'engines disconnected');
    await engine.restart();
    await waitFor(async () => (await get('/readyz')).status === 200, { timeoutMs: 30_000, what: '/readyz 200 again' });
    await waitFor(async () => (await get('/readyz', balancerOps)).status === 200, {
      timeoutMs: 30_000,
      what: 'glue-balancer /readyz 200 again',
    });
    await series('min(glue_engine_connects_total)', (v) => v >= 2, 'a reconnect each');
    // Every JSON log line of the run is one object with each key once (no second "name").
    const json = glue
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(json.length).toBeGreaterThan(5);
    // (A repeated key is dropped by JSON.parse: the line would not survive the round trip.)
    for (const l of json) expect(JSON.stringify(JSON.parse(l)), l).toBe(l);
  });
});
