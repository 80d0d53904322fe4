/**
 * managed mode's HAProxy supervision without Docker: a master left over by a Glue that died is
 * soft-stopped once the new one serves; a HAProxy that dies is restarted with the last good config;
 * a new Glue starts HAProxy on the last good config on disk, so routes answer across the hand-over.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeContainer } from '@glue/core/contract';
import { silentLogger, type ContainerInspectInfo } from '@glue/core';
import { freePort, httpGet, requireBinary, steadyClient, stopPid, tempDir, waitFor } from '@glue/testkit';
import { Applier, type ApplierOptions } from '../src/applier.js';
import { ManagedHaproxy } from '../src/managed.js';
import { buildModel } from '../src/model.js';
import { Renderer, templateContext } from '../src/template.js';

let dir: { path: string; cleanup: () => Promise<void> };
let port: number;
const started: ManagedHaproxy[] = [];
const pids: number[] = [];

beforeAll(async () => {
  dir = await tempDir('glue-managed-');
  port = await freePort();
  const text = new Renderer().render(
    templateContext(
      { http: [], tcp: [] },
      { httpBind: `127.0.0.1:${port}`, tcpAddress: '*', runtimeSocket: join(dir.path, 'rt.sock') },
    ),
  );
  writeFileSync(join(dir.path, 'haproxy.cfg'), text);
});
afterAll(async () => {
  for (const m of started) await m.stop();
  for (const pid of pids) await stopPid(pid, 'SIGKILL', 2000);
  await dir?.cleanup();
});

const make = (): ManagedHaproxy => {
  const m = new ManagedHaproxy({
    haproxyBin: requireBinary('haproxy'),
    configFile: join(dir.path, 'haproxy.cfg'),
    masterSocket: join(dir.path, 'master.sock'),
    runtimeSocket: join(dir.path, 'rt.sock'),
    logger: silentLogger(),
  });
  started.push(m);
  return m;
};

describe('ManagedHaproxy', () => {
  it('soft-stops a master an earlier Glue left running, after the new one serves', async () => {
    // What a Glue killed with SIGKILL leaves behind: its HAProxy master, pid file and all.
    const orphan = spawn(
      requireBinary('haproxy'),
      [
        '-W',
        '-S',
        join(dir.path, 'old-master.sock'),
        '-p',
        join(dir.path, 'master.pid'),
        '-f',
        join(dir.path, 'haproxy.cfg'),
      ],
      { stdio: 'ignore' },
    );
    const orphanPid = orphan.pid ?? 0;
    pids.push(orphanPid);
    await waitFor(async () => (await httpGet(`http://127.0.0.1:${port}/`, { host: 'x' })).status === 503, {
      timeoutMs: 10_000,
      what: 'the leftover HAProxy serving',
    });
    const next = make();
    await next.start();
    expect(next.pid).not.toBe(orphanPid);
    await waitFor(() => orphan.exitCode !== null || orphan.signalCode !== null, {
      timeoutMs: 10_000,
      what: 'the leftover master to exit',
    });
    expect((await httpGet(`http://127.0.0.1:${port}/`, { host: 'x' })).status).toBe(503);
  });

  it('restarts HAProxy when it dies', async () => {
    const m = started[started.length - 1] as ManagedHaproxy;
    const first = m.pid;
    process.kill(first, 'SIGKILL');
    await waitFor(() => m.running && m.pid !== first, { timeoutMs: 15_000, what: 'a new master' });
    await waitFor(async () => (await httpGet(`http://127.0.0.1:${port}/`, { host: 'x' })).status === 503, {
      timeoutMs: 15_000,
      what: 'serving again',
    });
    await m.reload();
  });
});

describe('Applier in managed mode: start-up', () => {
  let d: { path: string; cleanup: () => Promise<void> };
  let httpPort: number;
  let backendPort: number;
  let backend: HttpServer;
  const appliers: Applier[] = [];
  beforeAll(async () => {
    d = await tempDir('glue-managed-start-');
    httpPort = await freePort();
    backendPort = await freePort();
    backend = createHttpServer((_req, res) => res.end('kept'));
    await new Promise<void>((r) => backend.listen(backendPort, '127.0.0.1', () => r()));
  });
  afterAll(async () => {
    for (const a of appliers) await a.stop();
    await new Promise((r) => backend?.close(r));
    await d?.cleanup();
  });

  const make = (mode: 'managed' | 'file', containers: () => ContainerInspectInfo[]): Applier => {
    const runtimeSocket = join(d.path, 'rt.sock');
    const o: ApplierOptions = {
      mode,
      configFile: join(d.path, 'haproxy.cfg'),
      haproxyBin: requireBinary('haproxy'),
      reloadCommand: [],
      runtimeSocket,
      masterSocket: join(d.path, 'master.sock'),
      renderer: new Renderer(),
      settings: { httpBind: `127.0.0.1:${httpPort}`, tcpAddress: '127.0.0.1', runtimeSocket },
      hostMap: join(d.path, 'haproxy.hosts.map'),
      spareBackends: 2,
      debounceMs: 5,
      maxDelayMs: 50,
      minReloadIntervalMs: 0,
      fastPath: true,
      checkTimeoutMs: 30_000,
      reloadTimeoutMs: 10_000,
      logger: silentLogger(),
      compute: () => buildModel(containers()).model,
      alive: (id: string) => containers().some((c) => c.Id === id && c.State?.Running === true),
      handlerName: 'test',
    };
    const a = new Applier(o);
    appliers.push(a);
    return a;
  };

  it('starts HAProxy on the last good config on disk: a leftover HAProxy hands over with no 503, the first apply reloads', async () => {
    const container = fakeContainer({
      name: 'kept',
      ip: '127.0.0.1',
      labels: { [`glue_http_${backendPort}_host`]: 'kept.example.com' },
    });
    // What an earlier Glue left: its checked config and map, and its HAProxy master still running.
    await make('file', () => [container]).request();
    const orphan = spawn(
      requireBinary('haproxy'),
      [
        '-W',
        '-S',
        join(d.path, 'old-master.sock'),
        '-p',
        join(d.path, 'master.pid'),
        '-f',
        join(d.path, 'haproxy.cfg'),
      ],
      { stdio: 'ignore' },
    );
    await waitFor(
      async () => (await httpGet(`http://127.0.0.1:${httpPort}/`, { host: 'kept.example.com' })).status === 200,
      { timeoutMs: 10_000, what: 'the leftover HAProxy serving' },
    );

    // The new Glue: core starts handlers before its first listing, so the model is empty at start.
    let listed: ContainerInspectInfo[] = [];
    const next = make('managed', () => listed);
    const client = steadyClient(`http://127.0.0.1:${httpPort}/`, 'kept.example.com');
    await next.start();
    await waitFor(() => orphan.exitCode !== null || orphan.signalCode !== null, {
      timeoutMs: 10_000,
      what: 'the leftover master to exit',
    });
    expect((await httpGet(`http://127.0.0.1:${httpPort}/`, { host: 'kept.example.com' })).status).toBe(200);
    listed = [container];
    await next.request();
    const result = await client.stop();
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(0);
    expect(next.stats.reloads).toBe(1);
    // The container is gone: the route goes with the next apply.
    listed = [];
    await next.request();
    expect((await httpGet(`http://127.0.0.1:${httpPort}/`, { host: 'kept.example.com' })).status).toBe(503);
    await next.stop();
  });

  it('starts on the empty config when the file on disk fails haproxy -c', async () => {
    // A file of an earlier Glue run (its mark) that no longer passes haproxy -c.
    writeFileSync(join(d.path, 'haproxy.cfg'), '# Generated by Glue (an earlier run)\nglobal\n    no-such-directive\n');
    const a = make('managed', () => []);
    await a.start();
    expect((await httpGet(`http://127.0.0.1:${httpPort}/`, { host: 'kept.example.com' })).status).toBe(503);
    expect(readFileSync(join(d.path, 'haproxy.cfg'), 'utf8')).toContain('Generated by Glue');
    await a.stop();
  });
});
