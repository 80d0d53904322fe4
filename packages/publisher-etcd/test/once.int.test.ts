import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerEngine, type EtcdServer, freePort, startDockerd, startEtcd, tempDir } from '@glue/testkit';
import { publishedIds, publisherConfig } from './helpers.js';

// `glue -1` (the real CLI): exit 0 only if the keys reached etcd, and the keys outlive the run on
// their lease (they are not revoked as the run exits, even with delete-on-stop=true).
const GLUE = join(import.meta.dirname, '..', '..', 'cli', 'dist', 'bin', 'glue.js');
let engine: DockerEngine;
let etcd: EtcdServer;
let tmp: { path: string; cleanup(): Promise<void> };

function glueOnce(configDir: string): Promise<{ code: number | null; output: string; ms: number }> {
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [GLUE, '-1', '-c', configDir, '--docker-url', engine.url, '--log-format', 'json'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, output, ms: Date.now() - started })));
}

beforeAll(async () => {
  for (const built of [GLUE, join(import.meta.dirname, '..', 'dist', 'index.js')]) {
    if (!existsSync(built)) throw new Error(`${built} is missing: build @glue/cli and @glue/publisher-etcd first`);
  }
  [engine, etcd] = await Promise.all([startDockerd(), startEtcd()]);
  tmp = await tempDir('glue-etcd-once-');
});

afterAll(async () => {
  await Promise.allSettled([engine?.stop(), etcd?.stop(), tmp?.cleanup()]);
});

describe('glue -1', () => {
  it('exits 0 once the keys are in etcd, and leaves them on their lease until the TTL', async () => {
    const web = await engine.run({ name: 'once-web', labels: { glue_http_80_host: 'once.example.com' } });
    const conf = publisherConfig(tmp.path, 'ok', {
      endpoints: etcd.endpoint,
      'host-id': 'once',
      ttl: '30',
      'delete-on-stop': 'true',
    });
    const run = await glueOnce(conf);
    expect(run.code, run.output).toBe(0);
    // The run has exited: the keys are there, on a live lease with about the TTL left.
    expect(await publishedIds(etcd, 'once')).toEqual([web.id]);
    const keys = await etcd.keys('/glue/hosts/once/');
    const [lease] = new Set(Object.values(keys).map((k) => k.lease));
    expect(lease).toBeDefined();
    expect(lease).not.toBe('0');
    const ttl = JSON.parse(await etcd.ctl(['lease', 'timetolive', BigInt(lease!).toString(16), '-w', 'json'])) as {
      ttl: number;
    };
    expect(ttl.ttl).toBeGreaterThan(20);
  });

  it('exits 1 naming the endpoints and the INI file when etcd cannot be reached', async () => {
    const port = await freePort();
    const conf = publisherConfig(tmp.path, 'down', {
      endpoints: `127.0.0.1:${port}`,
      'host-id': 'down',
      'write-timeout': '2',
      'backoff-max': '0.5',
    });
    const run = await glueOnce(conf);
    expect(run.code, run.output).toBe(1);
    expect(run.output).toContain(`did not reach etcd at http://127.0.0.1:${port}`);
    expect(run.output).toContain(join(conf, 'publish.ini'));
    expect(run.ms).toBeLessThan(15_000);
  });
});
