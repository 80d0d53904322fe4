#!/usr/bin/env node
// HTTPS benchmark (issue: https). Prints figures and ratios against the goals:
//   a new certificate -> served (a TLS client with that SNI gets it), once the certificate is in hand:
//     through the runtime API (Glue's path) p50 goal <= 50 ms, side by side with the same through a reload
//   1,000 certificates in the crt-list at start-up: time until HAProxy serves them, and the worker's RSS
// A real HAProxy in master-worker mode, certificates loaded by Glue's Certificates (files first, then
// new/set/commit ssl cert + add ssl crt-list). GLUE_BENCH_RUNS (default 30), GLUE_BENCH_CERTS (1000).
import { Buffer } from 'node:buffer';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { line, pct } from './lib/report.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { ManagedHaproxy, Certificates, readBundle } = await import(
  join(root, 'packages/handler-haproxy/dist/internal.js')
);
const { freePort, requireBinary } = await import(join(root, 'packages/testkit/dist/index.js'));
const x509 = await import(join(root, 'packages/handler-haproxy/node_modules/@peculiar/x509/build/x509.es.js'));

const RUNS = Number(process.env.GLUE_BENCH_RUNS ?? 30);
const CERTS = Number(process.env.GLUE_BENCH_CERTS ?? 1000);
const haproxyBin = requireBinary('haproxy');
const quiet = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  trace() {},
  fatal() {},
  child() {
    return quiet;
  },
};
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

/** A self-signed leaf for `name` (chain + key PEM): what a CA would hand back, made fast. */
async function leaf(name) {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8)))
        .toString('hex')
        .replace(/^[89a-f]/, '1'),
      name: `CN=${name}`,
      notBefore: new Date(Date.now() - 3600_000),
      notAfter: new Date(Date.now() + 30 * 86400_000),
      keys,
      signingAlgorithm: ALG,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: name }])],
    },
    webcrypto,
  );
  const key = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  const r = readBundle(`${cert.toString('pem')}\n${key}\n`);
  if (!r.ok) throw new Error(r.reason);
  return { id: `bench-${name}`, bundle: r.bundle, origin: 'bench' };
}

/** The fingerprint HAProxy presents for SNI `name`. */
function presented(port, name) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername: name, rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.destroy();
      resolve(fp);
    });
    s.on('error', () => resolve(''));
  });
}
async function until(port, name, fingerprint, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await presented(port, name)) === fingerprint) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`${name} not served within ${timeoutMs} ms`);
}

async function world(tag, preload = []) {
  const dir = mkdtempSync(join(tmpdir(), `glue-bench-https-${tag}-`));
  const port = await freePort();
  const runtimeSocket = join(dir, 'rt.sock');
  let live = false;
  const certs = new Certificates({
    tlsDir: join(dir, 'tls'),
    defaultCert: undefined,
    runtimeSocket,
    runtimeReady: () => live,
    reloadSoon: () => undefined,
    logger: quiet,
    handlerName: 'bench',
  });
  certs.stage('bench', preload);
  await certs.prepare();
  const configFile = join(dir, 'haproxy.cfg');
  writeFileSync(
    configFile,
    [
      'global',
      `    stats socket ${runtimeSocket} mode 600 level admin expose-fd listeners`,
      'defaults',
      '    mode http',
      '    timeout client 5s',
      '    timeout server 5s',
      '    timeout connect 1s',
      'frontend https',
      `    bind 127.0.0.1:${port} ssl crt ${certs.defaultPem} crt-list ${certs.crtList}`,
      '    http-request return status 200',
      '',
    ].join('\n'),
  );
  const haproxy = new ManagedHaproxy({
    haproxyBin,
    configFile,
    masterSocket: join(dir, 'master.sock'),
    runtimeSocket,
    logger: quiet,
    timeoutMs: 120_000,
  });
  const t0 = performance.now();
  await haproxy.start();
  const startMs = performance.now() - t0;
  live = true;
  const stop = async () => {
    await certs.stop();
    await haproxy.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { port, certs, haproxy, startMs, stop };
}

// ---- a new certificate -> served --------------------------------------------------------------
{
  const w = await world('runtime');
  const runtime = [];
  const reload = [];
  const served = [];
  for (let i = 0; i < RUNS; i++) {
    const c = await leaf(`rt${i}.example.com`);
    const t0 = performance.now();
    served.push(c);
    await w.certs.set('bench', served);
    await until(w.port, `rt${i}.example.com`, c.bundle.fingerprint);
    runtime.push(performance.now() - t0);
  }
  for (let i = 0; i < Math.min(RUNS, 15); i++) {
    const c = await leaf(`rl${i}.example.com`);
    const t0 = performance.now();
    // The files as Glue writes them, then a reload instead of the runtime API.
    writeFileSync(join(w.certs.pathOf(c.id)), c.bundle.pem, { mode: 0o600 });
    writeFileSync(w.certs.crtList, `${readFileSync(w.certs.crtList, 'utf8')}${w.certs.pathOf(c.id)}\n`);
    await w.haproxy.reload();
    await until(w.port, `rl${i}.example.com`, c.bundle.fingerprint);
    reload.push(performance.now() - t0);
  }
  await w.stop();
  line('new certificate -> served, runtime API p50', pct(runtime, 50), 'ms', 50);
  line('new certificate -> served, runtime API p95', pct(runtime, 95), 'ms');
  line('new certificate -> served, reload p50', pct(reload, 50), 'ms');
  line('reload / runtime API (p50)', pct(reload, 50) / pct(runtime, 50), 'x');
}

// ---- 1,000 certificates at start-up ----------------------------------------------------------
{
  const t0 = performance.now();
  const many = [];
  for (let i = 0; i < CERTS; i++) many.push(await leaf(`s${i}.example.com`));
  const makeMs = performance.now() - t0;
  const w = await world('start', many);
  const last = many[many.length - 1];
  await until(w.port, `s${CERTS - 1}.example.com`, last.bundle.fingerprint);
  const pids = readFileSync(`/proc/${w.haproxy.pid}/task/${w.haproxy.pid}/children`, 'utf8').trim().split(/\s+/);
  const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  const workerRss = Math.max(...pids.map((p) => rss(Number(p))));
  const masterRss = rss(w.haproxy.pid);
  // The same 1,000 checked by Glue's own reader (what certs-dir does at start-up).
  const r0 = performance.now();
  for (const c of many) readBundle(c.bundle.pem);
  const readMs = performance.now() - r0;
  await w.stop();
  console.log(`(generating ${CERTS} test certificates took ${Math.round(makeMs)} ms, not counted)`);
  line(`${CERTS} certificates: Glue checks them (readBundle)`, readMs, 'ms');
  line(`${CERTS} certificates: HAProxy start until served`, w.startMs, 'ms');
  line(`${CERTS} certificates: HAProxy worker RSS`, workerRss, 'MB');
  line(`${CERTS} certificates: HAProxy master RSS`, masterRss, 'MB');
}
