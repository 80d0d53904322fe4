/**
 * managed mode's HAProxy supervision without Docker: a master left over by a Glue that died is
 * soft-stopped once the new one serves; a HAProxy that dies is restarted with the last good config.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@glue/core';
import { freePort, httpGet, requireBinary, stopPid, tempDir, waitFor } from '@glue/testkit';
import { ManagedHaproxy, Renderer, templateContext } from '../src/index.js';

let dir: { path: string; cleanup: () => Promise<void> };
let port: number;
const started: ManagedHaproxy[] = [];
const pids: number[] = [];

beforeAll(async () => {
  dir = await tempDir('glue-managed-');
  port = await freePort();
  const text = new Renderer().render(templateContext({ http: [], tcp: [] }, { httpBind: `127.0.0.1:${port}`, tcpAddress: '*', runtimeSocket: join(dir.path, 'rt.sock') }));
  writeFileSync(join(dir.path, 'haproxy.cfg'), text);
});
afterAll(async () => {
  for (const m of started) await m.stop();
  for (const pid of pids) await stopPid(pid, 'SIGKILL', 2000);
  await dir?.cleanup();
});

const make = (): ManagedHaproxy => {
  const m = new ManagedHaproxy({ haproxyBin: requireBinary('haproxy'), configFile: join(dir.path, 'haproxy.cfg'), masterSocket: join(dir.path, 'master.sock'), runtimeSocket: join(dir.path, 'rt.sock'), logger: silentLogger() });
  started.push(m);
  return m;
};

describe('ManagedHaproxy', () => {
  it('soft-stops a master an earlier Glue left running, after the new one serves', async () => {
    // What a Glue killed with SIGKILL leaves behind: its HAProxy master, pid file and all.
    const orphan = spawn(requireBinary('haproxy'), ['-W', '-S', join(dir.path, 'old-master.sock'), '-p', join(dir.path, 'master.pid'), '-f', join(dir.path, 'haproxy.cfg')], { stdio: 'ignore' });
    const orphanPid = orphan.pid ?? 0;
    pids.push(orphanPid);
    await waitFor(async () => (await httpGet(`http://127.0.0.1:${port}/`, { host: 'x' })).status === 503, { timeoutMs: 10_000, what: 'the leftover HAProxy serving' });
    const next = make();
    await next.start();
    expect(next.pid).not.toBe(orphanPid);
    await waitFor(() => orphan.exitCode !== null || orphan.signalCode !== null, { timeoutMs: 10_000, what: 'the leftover master to exit' });
    expect((await httpGet(`http://127.0.0.1:${port}/`, { host: 'x' })).status).toBe(503);
  });

  it('restarts HAProxy when it dies', async () => {
    const m = started[started.length - 1] as ManagedHaproxy;
    const first = m.pid;
    process.kill(first, 'SIGKILL');
    await waitFor(() => m.running && m.pid !== first, { timeoutMs: 15_000, what: 'a new master' });
    await waitFor(async () => (await httpGet(`http://127.0.0.1:${port}/`, { host: 'x' })).status === 503, { timeoutMs: 15_000, what: 'serving again' });
    await m.reload();
  });
});
