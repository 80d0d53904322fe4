import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireBinary } from './binaries.js';
import { safeRead } from './files.js';
import { isAlive, pidsMentioning, stopPid } from './processes.js';
import { waitFor } from './wait.js';

/** One key as etcd holds it: value and the lease it hangs on ('0' for none). */
export interface EtcdKey {
  value: string;
  lease: string;
}

export interface EtcdServer {
  /** `127.0.0.1:PORT`: give it as `endpoints`. */
  endpoint: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** The data dir (kept across restart()). */
  dir: string;
  pid(): number;
  /** `etcdctl` against this server; returns stdout. */
  ctl(args: string[]): Promise<string>;
  /** Every key under `prefix` with value and lease, read with etcdctl (not the code under test). */
  keys(prefix: string): Promise<Record<string, EtcdKey>>;
  /** Kills etcd with SIGKILL (data dir kept). */
  kill(): Promise<void>;
  /** Starts etcd again on the same data dir and ports. */
  restart(): Promise<void>;
  /** Stops etcd (by PID) and removes the data dir. Idempotent. */
  stop(): Promise<void>;
}

/** PEM files of a throw-away CA, a server certificate for 127.0.0.1 and a client certificate. */
export interface TestCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** Makes a CA, a server certificate (SAN IP 127.0.0.1, localhost) and a client certificate with openssl, in `dir`. */
export async function makeTestCerts(dir: string): Promise<TestCerts> {
  const openssl = requireBinary('openssl');
  const f = (name: string): string => join(dir, name);
  const run = async (args: string[]): Promise<void> => void (await execa(openssl, args, { cwd: dir }));
  await run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=glue-test-ca',
  ]);
  for (const [who, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    await run([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      f(`${who}.key`),
      '-out',
      f(`${who}.csr`),
      '-subj',
      `/CN=glue-test-${who}`,
    ]);
    writeFileSync(f(`${who}.ext`), `${ext}\n`);
    await run([
      'x509',
      '-req',
      '-in',
      f(`${who}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${who}.pem`),
      '-days',
      '2',
      '-extfile',
      f(`${who}.ext`),
    ]);
  }
  return {
    dir,
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
  };
}

export interface StartEtcdOptions {
  /** Serve clients over TLS with these certificates, and require client certificates signed by the CA. */
  tls?: TestCerts;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/**
 * Starts a private single-member etcd 3.4 on 127.0.0.1 (free client and peer ports, data in a temp
 * dir). Fails loudly, with the apt-get line, when etcd is not installed.
 */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  const etcdBin = requireBinary('etcd');
  const etcdctlBin = requireBinary('etcdctl');
  const dir = await mkdtemp(join(tmpdir(), 'glue-etcd-'));
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const tls = options.tls;
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const data = join(dir, 'data');
  const logFile = join(dir, 'etcd.log');
  const args = [
    '--name',
    'glue-test',
    '--data-dir',
    data,
    '--listen-client-urls',
    url,
    '--advertise-client-urls',
    url,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `glue-test=${peer}`,
    '--initial-cluster-state',
    'new',
    '--initial-cluster-token',
    `glue-${clientPort}`,
    '--logger',
    'zap',
    '--log-outputs',
    'stderr',
    ...(tls
      ? ['--cert-file', tls.serverCert, '--key-file', tls.serverKey, '--trusted-ca-file', tls.ca, '--client-cert-auth']
      : []),
  ];
  const tlsFlags = tls ? [`--cacert=${tls.ca}`, `--cert=${tls.clientCert}`, `--key=${tls.clientKey}`] : [];
  let child: ChildProcess | undefined;

  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;

  const launch = async (): Promise<void> => {
    const log = openSync(logFile, 'a');
    child = spawn(etcdBin, args, { stdio: ['ignore', log, log] });
    closeSync(log);
    const started = child;
    await waitFor(
      async () => {
        if (started.exitCode !== null || started.signalCode !== null)
          throw new Error(`etcd exited (${started.exitCode ?? started.signalCode})`);
        if (tls)
          return (
            (
              await execa(etcdctlBin, [`--endpoints=${url}`, ...tlsFlags, '--dial-timeout=1s', 'endpoint', 'health'], {
                env: { ETCDCTL_API: '3' },
                reject: false,
              })
            ).exitCode === 0
          );
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as { health?: string };
        return body.health === 'true';
      },
      { timeoutMs: 20_000, intervalMs: 100, what: `etcd on ${url} (log: ${logFile})` },
    ).catch((err: Error) => {
      const tail = safeRead(logFile).split('\n').slice(-15).join('\n');
      throw new Error(`${err.message}\n--- etcd log ---\n${tail}`);
    });
  };

  const ctl = async (ctlArgs: string[]): Promise<string> =>
    (
      await execa(
        etcdctlBin,
        [`--endpoints=${url}`, ...tlsFlags, '--dial-timeout=2s', '--command-timeout=5s', ...ctlArgs],
        { env: { ETCDCTL_API: '3' } },
      )
    ).stdout;

  let stopped = false;
  const server: EtcdServer = {
    endpoint: `127.0.0.1:${clientPort}`,
    url,
    dir,
    pid: () => child?.pid ?? 0,
    ctl,
    keys: async (prefix) => {
      // Lease IDs are 64-bit: keep them as strings (JSON.parse would round them).
      const raw = (await ctl(['get', '--prefix', prefix, '-w', 'json'])).replace(/"lease":(\d+)/g, '"lease":"$1"');
      const out = JSON.parse(raw) as { kvs?: { key: string; value?: string; lease?: number | string }[] };
      const result: Record<string, EtcdKey> = {};
      for (const kv of out.kvs ?? []) {
        result[Buffer.from(kv.key, 'base64').toString('utf8')] = {
          value: Buffer.from(kv.value ?? '', 'base64').toString('utf8'),
          lease: String(kv.lease ?? 0),
        };
      }
      return result;
    },
    kill: async () => {
      const pid = child?.pid;
      if (pid && running()) {
        const exited = new Promise((r) => child?.once('exit', r));
        await stopPid(pid, 'SIGKILL', 5000);
        await exited;
      }
    },
    restart: async () => {
      if (running()) throw new Error('etcd is still running');
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        if (child?.pid && running()) await stopPid(child.pid, 'SIGTERM', 10_000);
        for (const pid of pidsMentioning(dir)) if (isAlive(pid)) await stopPid(pid, 'SIGKILL', 2000);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  try {
    await launch();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
