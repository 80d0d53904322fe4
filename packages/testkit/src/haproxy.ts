import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from './binaries.js';
import { httpGet } from './http.js';
import { stopPid } from './processes.js';
import { waitFor } from './wait.js';
import { safeRead } from './files.js';

export interface HaproxyProcess {
  dir: string;
  /** The config file HAProxy runs (write it and reload). */
  configFile: string;
  masterSocket: string;
  /** Master PID. */
  pid(): number;
  /** `kill -USR2 <master>` as an argv: a reload command for external mode, no shell. */
  reloadCommand(): string[];
  /** One command on the master CLI. */
  master(command: string): Promise<string>;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts a private HAProxy in master-worker mode on a config (written to a temp dir), as an
 * operator's own HAProxy would run: for `external` mode tests. Fails loudly when haproxy is missing.
 */
export async function startHaproxy(config: string): Promise<HaproxyProcess> {
  const bin = requireBinary('haproxy');
  const dir = await mkdtemp(join(tmpdir(), 'glue-haproxy-'));
  const configFile = join(dir, 'haproxy.cfg');
  const masterSocket = join(dir, 'master.sock');
  const logFile = join(dir, 'haproxy.log');
  writeFileSync(configFile, config);
  const log = openSync(logFile, 'a');
  const child: ChildProcess = spawn(bin, ['-W', '-S', `${masterSocket},mode,600`, '-f', configFile], {
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const master = (command: string): Promise<string> => unixCommand(masterSocket, command);
  const proc: HaproxyProcess = {
    dir,
    configFile,
    masterSocket,
    pid: () => child.pid ?? 0,
    reloadCommand: () => ['kill', '-USR2', String(child.pid ?? 0)],
    master,
    log: () => safeRead(logFile),
    stop: async () => {
      if (child.pid) await stopPid(child.pid, 'SIGTERM', 5000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(async () => child.exitCode === null && /worker/.test(await master('show proc')), {
      timeoutMs: 10_000,
      what: `haproxy on ${configFile}`,
    });
  } catch (err) {
    const text = safeRead(logFile);
    await proc.stop();
    throw new Error(`${(err as Error).message}\n--- haproxy log ---\n${text}`);
  }
  return proc;
}

/** One command over a HAProxy CLI unix socket. */
export function unixCommand(path: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let out = '';
    const timer = setTimeout(() => sock.destroy(new Error(`no answer on ${path}`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.end(`${command}\n`));
    sock.on('data', (d: string) => (out += d));
    sock.on('error', (e) => (clearTimeout(timer), reject(e)));
    sock.on('close', () => (clearTimeout(timer), resolve(out)));
  });
}

export interface SteadyClientResult {
  ok: number;
  failed: number;
  /** The first few failures: status and body, or the error. */
  failures: string[];
  /** Bodies seen, with counts. */
  bodies: Record<string, number>;
}

/**
 * A client sending one request after another (new connection each) until stopped, counting every
 * answer that is not a 200 or fails: the hitless-reload probe.
 */
export function steadyClient(
  url: string,
  host: string,
  options: { intervalMs?: number } = {},
): { stop: () => Promise<SteadyClientResult> } {
  const result: SteadyClientResult = { ok: 0, failed: 0, failures: [], bodies: {} };
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const r = await httpGet(url, { host, timeoutMs: 5000 });
        if (r.status === 200) {
          result.ok += 1;
          const b = r.body.trim();
          result.bodies[b] = (result.bodies[b] ?? 0) + 1;
        } else {
          result.failed += 1;
          if (result.failures.length < 10) result.failures.push(`${r.status} ${r.body.trim().slice(0, 80)}`);
        }
      } catch (err) {
        result.failed += 1;
        if (result.failures.length < 10) result.failures.push((err as Error).message);
      }
      if (options.intervalMs) await new Promise((r) => setTimeout(r, options.intervalMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return result;
    },
  };
}

/** `n` requests; counts by trimmed body (which backend answered). */
export async function tally(url: string, host: string, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await httpGet(url, { host });
    const key = r.status === 200 ? r.body.trim() : `HTTP ${r.status}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
