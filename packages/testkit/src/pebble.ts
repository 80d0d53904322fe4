import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { requireBinary } from './binaries.js';
import { freePort } from './etcd.js';
import { stopPid } from './processes.js';
import { waitFor } from './wait.js';

/**
 * A private ACME CA: Debian's `pebble` on 127.0.0.1, with `pebble-challtestsrv` as its only DNS
 * server (every name resolves to 127.0.0.1, nothing else is ever asked) and HTTP-01 validation sent
 * to `httpPort` (the balancer's HTTP frontend).
 */
export interface PebbleCa {
  /** The ACME directory URL. */
  directory: string;
  /** The CA that signs Pebble's own HTTPS (what an ACME client must trust). */
  tlsCaFile: string;
  /** The root that signs the certificates Pebble issues (new on every start). */
  root(): Promise<string>;
  /** Everything Pebble printed so far. */
  log(): string;
  /** Stops Pebble alone (the CA is "down"); `start()` brings it back on the same port. */
  down(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Pebble's own HTTPS certificate and key (PEM), valid for IP 127.0.0.1, and the CA that signed it. */
  cert: string;
  key: string;
  ca: string;
  /** Where Pebble sends HTTP-01 validation requests (on 127.0.0.1). */
  httpPort: number;
  /** Extra environment (PEBBLE_*). */
  env?: Record<string, string>;
}

const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

export async function startPebble(o: PebbleOptions): Promise<PebbleCa> {
  const pebbleBin = requireBinary('pebble');
  const dnsBin = requireBinary('pebble-challtestsrv');
  const dir = await mkdtemp(join(tmpdir(), 'glue-pebble-'));
  const [acmePort, mgmtPort, dnsPort, dnsMgmtPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  writeFileSync(join(dir, 'cert.pem'), o.cert);
  writeFileSync(join(dir, 'key.pem'), o.key, { mode: 0o600 });
  const tlsCaFile = join(dir, 'tls-ca.pem');
  writeFileSync(tlsCaFile, o.ca);
  writeFileSync(
    join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: join(dir, 'cert.pem'),
        privateKey: join(dir, 'key.pem'),
        httpPort: o.httpPort,
        tlsPort: o.httpPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const logFile = join(dir, 'pebble.log');
  const out = (): number => openSync(logFile, 'a');
  const dnsLog = out();
  const dns = spawn(
    dnsBin,
    [
      '-defaultIPv4',
      '127.0.0.1',
      '-defaultIPv6',
      '',
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${dnsMgmtPort}`,
    ],
    { stdio: ['ignore', dnsLog, dnsLog] },
  );
  closeSync(dnsLog);
  let pebble: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const fd = out();
    const child = spawn(pebbleBin, ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], {
      stdio: ['ignore', fd, fd],
      cwd: dir,
      env: {
        ...process.env,
        PEBBLE_VA_NOSLEEP: '1',
        PEBBLE_WFE_NONCEREJECT: '0',
        PEBBLE_AUTHZREUSE: '0',
        ...o.env,
      },
    });
    closeSync(fd);
    pebble = child;
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`pebble exited (${child.exitCode})`);
        return portOpen(acmePort);
      },
      { timeoutMs: 20_000, intervalMs: 50, what: `pebble on 127.0.0.1:${acmePort}` },
    );
  };
  const down = async (): Promise<void> => {
    if (pebble?.pid !== undefined && pebble.exitCode === null) await stopPid(pebble.pid);
    pebble = undefined;
  };
  const stop = async (): Promise<void> => {
    await down();
    if (dns.pid !== undefined) await stopPid(dns.pid);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (dns.exitCode !== null) throw new Error(`pebble-challtestsrv exited (${dns.exitCode})`);
        return portOpen(dnsMgmtPort);
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'pebble-challtestsrv' },
    );
    await start();
  } catch (err) {
    const tail = readFileSync(logFile, 'utf8').slice(-3000);
    await stop();
    throw new Error(`${(err as Error).message}\n--- pebble log ---\n${tail}`);
  }
  const root = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: mgmtPort, path: '/roots/0', ca: o.ca, agent: false, timeout: 5000 },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () =>
            res.statusCode === 200 ? resolve(body) : reject(new Error(`pebble roots: ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  return {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    tlsCaFile,
    root,
    log: () => readFileSync(logFile, 'utf8'),
    down,
    start,
    stop,
  };
}
