/**
 * SIGTERM while a `haproxy -c` runs (a check of a big config takes seconds): glue-balancer must stop
 * cleanly, not die of the signal. execa's signal-exit re-raises a signal when it finds itself the only
 * listener, and the stop handler used to remove itself on the first signal: the process died with
 * SIGTERM, leaving a managed HAProxy and temp files behind. Real etcd, real haproxy behind a wrapper
 * that makes its check slow.
 */
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EtcdServer, requireBinary, startEtcd, tempDir, waitFor } from '@glue/testkit';

const BALANCER_BIN = fileURLToPath(new URL('../dist/bin/glue-balancer.js', import.meta.url));
let etcd: EtcdServer;
let dir: { path: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  const haproxy = requireBinary('haproxy');
  [etcd, dir] = await Promise.all([startEtcd(), tempDir('glue-lb-signals-')]);
  const slow = join(dir.path, 'slow-haproxy');
  writeFileSync(slow, `#!/bin/sh\ncase " $* " in *" -c "*) sleep 4 ;; esac\nexec ${haproxy} "$@"\n`);
  chmodSync(slow, 0o755);
});

afterAll(async () => {
  await etcd?.stop();
  await dir?.cleanup();
});

describe('glue-balancer and signals', () => {
  it('SIGTERM during a haproxy -c: a clean stop (exit 0), not death by the signal', async () => {
    const id = 'a'.repeat(64);
    await etcd.ctl([
      'put',
      `/glue/http/a.example.com/h1/${id}/80`,
      JSON.stringify({
        v: 1,
        host: 'h1',
        id,
        name: 'web',
        vhost: 'a.example.com',
        port: 80,
        prefix: '',
        stripPrefix: false,
        weight: 100,
        addresses: {},
        endpoint: { address: '10.1.1.1', port: 80 },
        health: null,
        container: `/glue/hosts/h1/containers/${id}`,
      }),
    ]);
    const child = spawn(
      process.execPath,
      [
        BALANCER_BIN,
        '-w',
        '--source',
        'etcd',
        '--etcd-endpoints',
        etcd.endpoint,
        '--mode',
        'file',
        '--haproxy',
        join(dir.path, 'slow-haproxy'),
        '--config-file',
        join(dir.path, 'haproxy.cfg'),
        '--http-bind',
        '127.0.0.1:1',
        '--log-format',
        'json',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (c, s) => r([c, s])));
    await waitFor(() => log.includes('index entries listed'), { timeoutMs: 15_000, what: 'the balancer to list etcd' });
    // The first apply is in its (slow) haproxy -c now.
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }, log).toEqual({ code: 0, signal: null });
    expect(log).toMatch(/"msg":"stopping"/);
  });
});
