/**
 * HTTPS with certificates from files (issue: https), against a real engine, a real HAProxy run by
 * glue-balancer and a real TLS client with SNI: labels pick HTTPS, redirect and HSTS per host; a host
 * without a certificate is served with the default one (and logged); a certificate dropped into
 * certs-dir, a renewal and a host joining HTTPS are served without a reload; a bad file is refused
 * while the old certificate keeps serving.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DockerEngine,
  freePort,
  httpGet,
  httpsGet,
  pidsMentioning,
  requireBinary,
  startDockerd,
  stopPid,
  tempDir,
  waitFor,
} from '@glue/testkit';
import { testCa, type TestCa } from './tls-certs.js';

const BALANCER_BIN = fileURLToPath(new URL('../dist/bin/glue-balancer.js', import.meta.url));

let engine: DockerEngine;
let dir: { path: string; cleanup: () => Promise<void> };
let httpPort: number;
let httpsPort: number;
let balancer: ChildProcess;
let log = '';
let ca: TestCa;
let certsDir: string;
let opsPort: number;

const reloads = (): number => log.split('HAProxy reloaded with').length - 1;
const https = (host: string, path = '/', extra: { insecure?: boolean } = {}) =>
  httpsGet(`https://127.0.0.1:${httpsPort}${path}`, { servername: host, ca: ca.pem, ...extra });
const served = async (host: string, page: string): Promise<void> => {
  let last = '';
  await waitFor(
    async () => {
      try {
        const r = await https(host);
        last = `${r.status} ${r.body.trim()}`;
        return last === `200 ${page}`;
      } catch (err) {
        last = (err as Error).message;
        return false;
      }
    },
    { timeoutMs: 20_000, what: `https://${host} answering ${page} (last: ${last})` },
  );
};
const put = async (name: string, names: string[], o: { notAfterDays?: number } = {}): Promise<string> => {
  const c = await ca.issue({
    names,
    ...(o.notAfterDays ? { notAfter: new Date(Date.now() + o.notAfterDays * 86_400_000) } : {}),
  });
  writeFileSync(join(certsDir, name), c.cert + c.key);
  return c.cert;
};
const fingerprintOf = async (pem: string): Promise<string> => {
  const { X509Certificate } = await import('node:crypto');
  return new X509Certificate(pem).fingerprint256;
};

beforeAll(async () => {
  requireBinary('haproxy');
  ca = await testCa();
  engine = await startDockerd();
  dir = await tempDir('glue-lb-https-');
  certsDir = join(dir.path, 'certs');
  (await import('node:fs')).mkdirSync(certsDir);
  await put('a.pem', ['a.example.com']);
  httpPort = await freePort();
  httpsPort = await freePort();
  opsPort = await freePort();
  const args = [
    '--http-addr',
    `127.0.0.1:${opsPort}`,
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
    '--certs-dir',
    certsDir,
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
});

afterAll(async () => {
  if (process.env.GLUE_HTTPS_LOG) writeFileSync(process.env.GLUE_HTTPS_LOG, log);
  if (balancer?.pid) await stopPid(balancer.pid, 'SIGTERM', 15_000);
  if (dir) for (const pid of pidsMentioning(dir.path)) await stopPid(pid, 'SIGKILL', 2000);
  await engine?.stop();
  await dir?.cleanup();
});

describe('HTTPS from certs-dir', () => {
  it('serves a tls host with its certificate for its SNI name, and nothing else changes for plain hosts', async () => {
    await engine.run({ name: 'aa', labels: { glue_http_80_host: 'a.example.com', glue_http_80_tls: 'yes' } });
    await engine.run({ name: 'plain', labels: { glue_http_80_host: 'plain.example.com' } });
    await served('a.example.com', 'aa');
    const r = await https('a.example.com');
    expect(r.authorized).toBe(true);
    expect(r.cert.san).toBe('DNS:a.example.com');
    // Without a redirect label, plain HTTP serves it too.
    expect((await httpGet(`http://127.0.0.1:${httpPort}/`, { host: 'a.example.com' })).body.trim()).toBe('aa');
    // A host that did not ask for HTTPS is not served there; on HTTP it is.
    expect((await https('plain.example.com', '/', { insecure: true })).status).toBe(503);
    expect((await httpGet(`http://127.0.0.1:${httpPort}/`, { host: 'plain.example.com' })).body.trim()).toBe('plain');
    // Keys on disk are for HAProxy only.
    const stored = join(dir.path, 'haproxy.tls', 'certs', 'file-a.pem');
    expect(statSync(stored).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir.path, 'haproxy.tls', 'crt-list'), 'utf8')).toContain(stored);
  });

  it('a host without a certificate gets the default one, and the log says so', async () => {
    await engine.run({ name: 'nocert', labels: { glue_http_80_host: 'nocert.example.com', glue_http_80_tls: 'yes' } });
    await waitFor(async () => (await https('nocert.example.com', '/', { insecure: true })).status === 200, {
      timeoutMs: 20_000,
      what: 'nocert over HTTPS',
    });
    const r = await https('nocert.example.com', '/', { insecure: true });
    expect(r.authorized).toBe(false);
    expect(r.cert.cn).toBe('glue-default-certificate.invalid');
    expect(log).toMatch(
      /HTTPS host nocert\.example\.com has no certificate yet: it is served with the default certificate/,
    );
  });

  it('redirect_https answers plain HTTP with a permanent redirect (ACME path excepted), hsts adds the header', async () => {
    await put('r.pem', ['r.example.com']);
    await engine.run({
      name: 'rr',
      labels: { glue_http_80_host: 'r.example.com', glue_http_80_redirect_https: 'yes', glue_http_80_hsts: 'yes' },
    });
    await served('r.example.com', 'rr');
    const plain = await httpGet(`http://127.0.0.1:${httpPort}/x/y?z=1`, { host: 'r.example.com' });
    expect(plain.status).toBe(301);
    expect(plain.headers.location).toBe(`https://r.example.com:${httpsPort}/x/y?z=1`);
    const challenge = await httpGet(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/abc`, {
      host: 'r.example.com',
    });
    expect(challenge.status).not.toBe(301);
    const secure = await https('r.example.com');
    expect(secure.headers['strict-transport-security']).toBe('max-age=31536000');
    expect((await https('a.example.com')).headers['strict-transport-security']).toBeUndefined();
  });

  it('a certificate added to certs-dir, a renewal, and a host joining HTTPS are served without a reload', async () => {
    const before = reloads();
    await engine.run({ name: 'late', labels: { glue_http_80_host: 'late.example.com', glue_http_80_tls: 'yes' } });
    await waitFor(async () => (await https('late.example.com', '/', { insecure: true })).status === 200, {
      timeoutMs: 20_000,
      what: 'late over HTTPS with the default certificate',
    });
    await put('late.pem', ['late.example.com']);
    await served('late.example.com', 'late');
    const renewed = await put('a.pem', ['a.example.com'], { notAfterDays: 20 });
    const want = await fingerprintOf(renewed);
    await waitFor(async () => (await https('a.example.com')).cert.fingerprint === want, {
      timeoutMs: 10_000,
      what: 'the renewed certificate of a.example.com',
    });
    // Past the scheduler's debounce: no reload is waiting either.
    await new Promise((r) => setTimeout(r, 600));
    expect(reloads()).toBe(before);
    expect(log).toMatch(/certificate file-late for late\.example\.com .* served through the runtime API, no reload/);
    // A file removed: its host falls back to the default certificate, still without a reload.
    const { rmSync } = await import('node:fs');
    rmSync(join(certsDir, 'late.pem'));
    await waitFor(
      async () =>
        (await https('late.example.com', '/', { insecure: true })).cert.cn === 'glue-default-certificate.invalid',
      {
        timeoutMs: 10_000,
        what: 'late.example.com back on the default certificate',
      },
    );
    await new Promise((r) => setTimeout(r, 600));
    expect(reloads()).toBe(before);
    expect(log).toMatch(/certificate file-late no longer served \(served through the runtime API, no reload\)/);
  });

  it('a bad file is refused with its reason, and the certificate that was serving keeps serving', async () => {
    const serving = (await https('a.example.com')).cert.fingerprint;
    const other = await ca.issue({ names: ['a.example.com'] });
    const wrongKey = await ca.issue({ names: ['zzz.example.com'] });
    writeFileSync(join(certsDir, 'a.pem'), other.cert + wrongKey.key);
    await waitFor(
      () =>
        /certs-dir: \S+a\.pem its private key does not match the certificate; not served \(its previous version keeps serving\)/.test(
          log,
        ),
      {
        timeoutMs: 10_000,
        what: 'the refusal of a.pem',
      },
    );
    writeFileSync(join(certsDir, 'junk.pem'), 'not a certificate\n');
    await waitFor(() => /certs-dir: \S+junk\.pem is not a PEM certificate/.test(log), {
      timeoutMs: 10_000,
      what: 'the refusal of junk.pem',
    });
    expect((await https('a.example.com')).cert.fingerprint).toBe(serving);
  });

  it('a route whose host is served differently by an older container is dropped, with the label named', async () => {
    await engine.run({ name: 'a2', labels: { glue_http_80_host: 'a.example.com' } });
    await waitFor(
      () =>
        /container a2: label glue_http_80_tls=\\"false\\" a\.example\.com is already served over HTTPS by aa/.test(log),
      {
        timeoutMs: 10_000,
        what: 'the conflict line',
      },
    );
  });

  it('the metrics count the certificates by source and the hosts still on the default certificate', async () => {
    const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    const value = (series: string): number => Number(new RegExp(`^${series} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('glue_haproxy_certificates\\{handler="glue-balancer",source="certs-dir"\\}')).toBe(2);
    expect(value('glue_haproxy_https_hosts_without_certificate\\{handler="glue-balancer"\\}')).toBe(2);
    const expiry = value('glue_haproxy_certificate_earliest_expiry_timestamp_seconds\\{handler="glue-balancer"\\}');
    expect(expiry * 1000).toBeGreaterThan(Date.now());
  });
});
