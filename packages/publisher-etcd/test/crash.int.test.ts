import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, type EtcdServer, isAlive, startDockerd, startEtcd, stopPid, waitFor } from '@glue/testkit';
import { expectPublished, runningIds } from './helpers.js';

// The daemon dies without cleaning up (kill -9): its keys stay until the lease TTL runs out, then
// vanish. A new daemon started within the TTL sweeps what changed meanwhile and takes the keys over.
const TTL = 4;
let engine: DockerEngine;
let etcd: EtcdServer;
const children: ChildProcess[] = [];

function startAgent(host: string, ttl = TTL): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      join(import.meta.dirname, 'fixtures', 'agent.mjs'),
      engine.url,
      JSON.stringify({ endpoints: etcd.endpoint, 'host-id': host, ttl: String(ttl) }),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGKILL' && signal !== 'SIGTERM')
      console.error(`agent exited ${code ?? signal}: ${err}`);
  });
  return child;
}

async function kill9(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  await stopPid(child.pid!, 'SIGKILL', 2000);
  await exited;
}

beforeAll(async () => {
  // The agent runs as its own node process from the built package.
  if (!existsSync(join(import.meta.dirname, '..', 'dist', 'index.js')))
    throw new Error('build the package first: pnpm --filter @glue/publisher-etcd build');
  [engine, etcd] = await Promise.all([startDockerd(), startEtcd()]);
});

afterAll(async () => {
  for (const c of children) if (c.pid && isAlive(c.pid)) await stopPid(c.pid, 'SIGKILL', 2000);
  await Promise.allSettled([engine?.stop(), etcd?.stop()]);
});

describe('daemon crash', () => {
  it('kill -9: the keys stay until the TTL, then vanish', async () => {
    const a = await engine.run({ name: 'crash-a', labels: { glue_http_80_host: 'crash.example.com' } });
    const agent = startAgent('crashy');
    await expectPublished(etcd, 'crashy', () => [a.id]);
    await kill9(agent);
    const killedAt = Date.now();
    // Nobody revoked anything: the keys are still there right after the crash...
    expect(Object.keys(await etcd.keys('/glue/hosts/crashy/')).length).toBe(2);
    // ...and gone once the lease expires.
    await waitFor(async () => Object.keys(await etcd.keys('/glue/')).length === 0, {
      timeoutMs: (TTL + 10) * 1000,
      intervalMs: 200,
      what: 'the keys to expire',
    });
    // The lease was last renewed up to one keepalive interval (TTL/3) before the kill, so etcd may
    // rightly expire it as early as TTL - TTL/3 after the kill (0.5 s slack for etcd's lease clock).
    const keepaliveEveryMs = Math.max(500, Math.floor((TTL * 1000) / 3));
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(TTL * 1000 - keepaliveEveryMs - 500);
  });

  it('restart within the TTL: what changed meanwhile is swept at once, the rest moves to the new lease', async () => {
    const b = await engine.run({ name: 'crash-b' });
    // A long TTL, so that only the sweep (not the expiry) can remove b's keys within the wait below.
    const first = startAgent('crashy', 60);
    await expectPublished(etcd, 'crashy', () => runningIds(engine));
    const [oldLease] = new Set(Object.values(await etcd.keys('/glue/hosts/crashy/')).map((k) => k.lease));
    await kill9(first);
    await engine.cli(['rm', '-f', b.id]);
    startAgent('crashy', 60);
    await expectPublished(etcd, 'crashy', () => runningIds(engine), 15_000);
    const keys = await etcd.keys('/glue/');
    expect(Object.keys(keys).some((k) => k.includes(b.id))).toBe(false);
    const leases = new Set(Object.values(keys).map((k) => k.lease));
    expect(leases.size).toBe(1);
    expect(leases.has(oldLease!)).toBe(false);
  });
});
