/**
 * Certificates from a real ACME CA (issue: https): Debian's Pebble on loopback, its DNS
 * (pebble-challtestsrv) answering every name with 127.0.0.1, and its HTTP-01 validation sent to the
 * HAProxy that glue-balancer runs, which answers the challenge itself. Checked with a real TLS client
 * and SNI against Pebble's root: issue for a new container's host, renewal of a stored certificate
 * near its end with zero failed requests meanwhile, a name outside acme-domains never requested, and
 * a CA that is down: HTTP keeps routing and issuance resumes once it is back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DockerEngine,
  freePort,
  httpGet,
  httpsGet,
  type PebbleCa,
  pidsMentioning,
  requireBinary,
  startDockerd,
  startPebble,
  stopPid,
  tempDir,
  waitFor,
} from '@glue/testkit';
import { testCa, type TestCa } from './tls-certs.js';

const BALANCER_BIN = fileURLToPath(new URL('../dist/bin/glue-balancer.js', import.meta.url));
const DAY = 86_400_000;

let engine: DockerEngine;
let dir: { path: string; cleanup: () => Promise<void> };
let pebble: PebbleCa;
let ca: TestCa;
let httpPort: number;
let httpsPort: number;
let balancer: ChildProcess;
let log = '';
let storage: string;
let renewFingerprint = '';

const https = (host: string, caPem?: string) =>
  httpsGet(`https://127.0.0.1:${httpsPort}/`, {
    servername: host,
    ...(caPem ? { ca: caPem } : { insecure: true }),
    timeoutMs: 3000,
  });
/** Waits until `host` is served with a certificate Pebble's current root verifies; returns how long it took. */
const issued = async (host: string, page: string, timeoutMs = 60_000): Promise<number> => {
  const started = Date.now();
  let last = '';
  await waitFor(
    async () => {
      try {
        const r = await https(host, await pebble.root());
        last = `${r.status} ${r.body.trim()}`;
        return last === `200 ${page}`;
      } catch (err) {
        last = (err as Error).message;
        return false;
      }
    },
    { timeoutMs, intervalMs: 200, what: `${host} served with a Pebble certificate (last: ${last})` },
  );
  return Date.now() - started;
};

beforeAll(async () => {
  requireBinary('haproxy');
  ca = await testCa('Glue test CA (Pebble TLS)');
  httpPort = await freePort();
  httpsPort = await freePort();
  const tls = await ca.issue({ names: ['localhost'], ips: ['127.0.0.1'] });
  pebble = await startPebble({ cert: tls.cert, key: tls.key, ca: ca.pem, httpPort });
  engine = await startDockerd();
  dir = await tempDir('glue-lb-acme-');
  storage = join(dir.path, 'acme');
  // A certificate stored by an earlier run, two thirds through its life: renewed at start.
  mkdirSync(join(storage, 'certs'), { recursive: true });
  const old = await ca.issue({
    names: ['renew.example.com'],
    notBefore: new Date(Date.now() - 20 * DAY),
    notAfter: new Date(Date.now() + 5 * DAY),
  });
  writeFileSync(join(storage, 'certs', 'renew.example.com.pem'), old.cert + old.key, { mode: 0o600 });
  const { X509Certificate } = await import('node:crypto');
  renewFingerprint = new X509Certificate(old.cert).fingerprint256;
  const args = [
    '-w',
    '--docker-url',
    engine.url,
    '--mode',
    'managed',
    '--config-file',
    join(dir.path, 'haproxy.cfg'),
    '--http-bind',
    `127.0.0.1:${httpPort}`,
    '--https-bind',
    `127.0.0.1:${httpsPort}`,
    '--acme-directory',
    pebble.directory,
    '--acme-ca-file',
    pebble.tlsCaFile,
    '--acme-domains',
    '.example.com',
    '--acme-email',
    'ops@example.com',
    '--acme-storage',
    storage,
    '--acme-retry',
    '1',
    '--log-level',
    'debug',
    '--log-format',
    'json',
  ];
  balancer = spawn(process.execPath, [BALANCER_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  balancer.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  await waitFor(() => log.includes('glue-balancer watching Docker events') || balancer.exitCode !== null, {
    timeoutMs: 30_000,
    what: 'glue-balancer to start',
  });
  if (balancer.exitCode !== null) throw new Error(`glue-balancer exited: ${log}`);
}, 60_000);

afterAll(async () => {
  if (process.env.GLUE_ACME_LOG) {
    writeFileSync(process.env.GLUE_ACME_LOG, log);
    writeFileSync(`${process.env.GLUE_ACME_LOG}.pebble`, pebble?.log() ?? '');
  }
  if (balancer?.pid) await stopPid(balancer.pid, 'SIGTERM', 15_000);
  if (dir) for (const pid of pidsMentioning(dir.path)) await stopPid(pid, 'SIGKILL', 2000);
  await engine?.stop();
  await pebble?.stop();
  await dir?.cleanup();
});

describe('ACME through HAProxy (Pebble)', () => {
  it("issues a certificate for a new container's host, answered by HAProxy itself, and serves it without a reload", async () => {
    const reloadsBefore = log.split('HAProxy reloaded with').length;
    await engine.run({ name: 'fresh', labels: { glue_http_80_host: 'fresh.example.com', glue_http_80_tls: 'yes' } });
    const ms = await issued('fresh.example.com', 'fresh');
    console.log(`acme: fresh.example.com served with a Pebble certificate ${ms} ms after its container started`);
    expect(log).toMatch(/ACME: issued a certificate for fresh\.example\.com/);
    expect(log).toMatch(
      /certificate acme-fresh\.example\.com for fresh\.example\.com .*served through the runtime API, no reload/,
    );
    expect(log.split('HAProxy reloaded with').length).toBe(reloadsBefore);
    // The account key and the certificate are stored for the next run, readable by root only.
    expect(statSync(join(storage, 'account.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(storage, 'certs', 'fresh.example.com.pem')).mode & 0o777).toBe(0o600);
    // Pebble validated through HAProxy's HTTP frontend.
    expect(pebble.log()).toMatch(/fresh\.example\.com/);
  });

  it('never asks the CA for a name outside acme-domains; that host gets the default certificate', async () => {
    await engine.run({ name: 'evil', labels: { glue_http_80_host: 'evil.example.org', glue_http_80_tls: 'yes' } });
    await waitFor(() => /ACME: evil\.example\.org is not in acme-domains: no certificate is requested/.test(log), {
      timeoutMs: 10_000,
      what: 'the refusal line',
    });
    const r = await https('evil.example.org');
    expect(r.status).toBe(200);
    expect(r.cert.cn).toBe('glue-default-certificate.invalid');
    await new Promise((r) => setTimeout(r, 1000));
    expect(pebble.log()).not.toMatch(/evil\.example\.org/);
    expect(log).not.toMatch(/ordering a certificate for evil/);
  });

  it('renews a stored certificate a third from its end, swapping it with zero failed requests', async () => {
    // Served from storage since start (SNI picks it even before the host has a route: 503 over it).
    const before = await https('renew.example.com');
    expect(before.cert.fingerprint).toBe(renewFingerprint);
    expect(before.status).toBe(503);
    // Then renewed once its host is wanted; a steady client meanwhile must never fail.
    await engine.run({ name: 'renew', labels: { glue_http_80_host: 'renew.example.com', glue_http_80_tls: 'yes' } });
    await waitFor(async () => (await https('renew.example.com').catch(() => undefined))?.status === 200, {
      timeoutMs: 20_000,
      what: 'renew.example.com routable',
    });
    let ok = 0;
    let failed = 0;
    const seen = new Set<string>();
    let stop = false;
    const load = (async () => {
      while (!stop) {
        try {
          const r = await https('renew.example.com');
          if (r.status === 200) {
            ok += 1;
            seen.add(r.cert.fingerprint);
          } else failed += 1;
        } catch {
          failed += 1;
        }
      }
    })();
    await issued('renew.example.com', 'renew');
    stop = true;
    await load;
    console.log(`acme: renewal swap under load: ${ok} ok, ${failed} failed, ${seen.size} certificates seen`);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(5);
    expect(log).toMatch(/ACME: ordering a certificate for renew\.example\.com/);
  });

  it('a CA that is down: HTTP keeps routing, the failure is logged, and issuance resumes once it is back', async () => {
    await pebble.down();
    await engine.run({ name: 'later', labels: { glue_http_80_host: 'later.example.com', glue_http_80_tls: 'yes' } });
    await engine.run({ name: 'plain', labels: { glue_http_80_host: 'plain.example.com' } });
    await waitFor(
      () =>
        /ACME: ordering a certificate for later\.example\.com failed: cannot reach the CA at .*retrying in/.test(log),
      {
        timeoutMs: 30_000,
        what: 'the failure line',
      },
    );
    await waitFor(
      async () => (await httpGet(`http://127.0.0.1:${httpPort}/`, { host: 'plain.example.com' })).status === 200,
      { timeoutMs: 10_000, what: 'plain HTTP routing while the CA is down' },
    );
    expect((await https('later.example.com')).cert.cn).toBe('glue-default-certificate.invalid');
    await pebble.start();
    const ms = await issued('later.example.com', 'later', 60_000);
    console.log(`acme: issued ${ms} ms after the CA came back`);
  });
});
