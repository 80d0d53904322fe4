/**
 * `managed` mode: Glue starts HAProxy in master-worker mode (`-W -S master.sock`), supervises it
 * (restarts it with the last good config if it dies) and reloads it through the master CLI, checking
 * the master's reload counters so a failed reload is reported instead of assumed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { type Logger, sleep } from '@glue/core';
import { parseShowProc, socketCommand, workerPid, type ProcInfo } from './haproxy-io.js';

export interface ManagedOptions {
  haproxyBin: string;
  configFile: string;
  masterSocket: string;
  /** The runtime socket the config declares: used to wait for the new worker after a reload. */
  runtimeSocket: string;
  logger: Logger;
  /** How long start and reload may take. Default 15 s. */
  timeoutMs?: number;
}

/** HAProxy's [WARNING] lines that are normal life in master-worker mode (reloads, stops, servers set ready). */
const ROUTINE =
  /stopped \(cumulated conns|is UP|is DOWN|leaving forced maintenance|going into maintenance|going DOWN for maintenance|exited with code 0|Exiting Master process|All workers exited|Reexecuting Master process|Stopping (frontend|backend|proxy)|(Paused|Resumed) frontend/;

/** How many of HAProxy's last lines are kept (a reload of a big config prints one line per proxy). */
const TAIL = 200;

const SLOT_EMPTIED = /backend 'glue_host_\d+' has no server available!$/;

/** The PID in `pidFile` if it is a live haproxy running `configFile`. */
function leftoverMaster(pidFile: string, configFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim().split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.some((a) => a.endsWith('haproxy')) && cmdline.includes(configFile) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export class ManagedHaproxy {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly tail: string[] = [];
  /** Lines HAProxy printed so far (the tail keeps the last TAIL of them). */
  private lines = 0;
  private exited: Promise<void> | undefined;
  private restarts = 0;
  private up = false;

  constructor(private readonly options: ManagedOptions) {}

  /** The master's PID (0 when not running). */
  get pid(): number {
    return this.child?.pid ?? 0;
  }

  /** Started, serving, and not being restarted. */
  get running(): boolean {
    return this.up && this.alive;
  }

  private get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** HAProxy's last lines on stderr/stdout: shown when it fails. */
  recentOutput(): string {
    return this.tail.slice(-30).join('\n');
  }

  /** The lines HAProxy printed since `mark` (a value of `lines`), as far as the tail still has them. */
  private outputSince(mark: number): string {
    const n = Math.min(this.lines - mark, this.tail.length);
    return n > 0 ? this.tail.slice(-n).join('\n') : '';
  }

  async start(): Promise<void> {
    this.stopping = false;
    this.up = false;
    const { haproxyBin, configFile, masterSocket, logger } = this.options;
    rmSync(masterSocket, { force: true });
    const pidFile = `${masterSocket.replace(/\.sock$/, '')}.pid`;
    const leftover = leftoverMaster(pidFile, configFile);
    const child = spawn(haproxyBin, ['-W', '-S', `${masterSocket},mode,600`, '-p', pidFile, '-f', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        if (line.trim() === '') return;
        this.tail.push(line);
        this.lines += 1;
        if (this.tail.length > TAIL) this.tail.shift();
        // A host slot emptied by Glue (the host left the map first): routine, not an alert.
        if (line.includes('[ALERT]') && !SLOT_EMPTIED.test(line)) logger.error({ haproxy: line }, `haproxy: ${line}`);
        else if (line.includes('[WARNING]') && !ROUTINE.test(line)) logger.warn({ haproxy: line }, `haproxy: ${line}`);
        // Routine lines (every reload prints one "Proxy … stopped" per proxy): debug, not info.
        else logger.debug({ haproxy: line }, `haproxy: ${line}`);
      });
    }
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        resolve();
        if (this.child !== child || this.stopping || !this.up) return;
        this.up = false;
        logger.error({ code, signal }, `haproxy master exited (code ${code}, signal ${signal})`);
        this.scheduleRestart();
      });
      child.on('error', (err) => {
        this.tail.push(String(err));
        resolve();
      });
    });
    const deadline = Date.now() + (this.options.timeoutMs ?? 15_000);
    for (;;) {
      if (!this.alive) throw new Error(`haproxy exited at start-up:\n${this.recentOutput()}`);
      const proc = await this.showProc().catch(() => undefined);
      const newest = proc?.workers[0];
      if (newest && (await workerPid(this.options.runtimeSocket).catch(() => undefined)) === newest.pid) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(
          `haproxy did not come up within ${this.options.timeoutMs ?? 15_000} ms:\n${this.recentOutput()}`,
        );
      }
      await sleep(20);
    }
    this.up = true;
    if (leftover !== undefined && leftover !== child.pid) {
      // A HAProxy of an earlier Glue that died without stopping it: ours serves now (same ports,
      // SO_REUSEPORT), so let that one finish its connections and go.
      logger.warn(
        { pid: leftover },
        `soft-stopping HAProxy master ${leftover} left running on ${configFile} by an earlier Glue`,
      );
      try {
        process.kill(leftover, 'SIGUSR1');
      } catch {
        // gone meanwhile
      }
    }
    logger.info(
      { pid: this.pid, config: configFile },
      `haproxy started in master-worker mode (master pid ${this.pid})`,
    );
  }

  private scheduleRestart(): void {
    this.restarts += 1;
    const delay = Math.min(30_000, 250 * 2 ** Math.min(this.restarts, 7));
    this.options.logger.warn({ restartInMs: delay }, `restarting haproxy with the last good config in ${delay} ms`);
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      this.start().catch((err: unknown) => {
        this.options.logger.error({ err: String(err) }, `haproxy restart failed: ${String(err)}`);
        if (!this.stopping) this.scheduleRestart();
      });
    }, delay);
    this.restartTimer.unref();
  }

  async showProc(): Promise<ProcInfo | undefined> {
    return parseShowProc(await socketCommand(this.options.masterSocket, 'show proc', 3000));
  }

  /** Reloads through the master CLI and waits until the new worker answers; throws if HAProxy says the reload failed. */
  async reload(): Promise<void> {
    const until = Date.now() + (this.options.timeoutMs ?? 15_000);
    while (!this.running && !this.stopping && Date.now() < until) await sleep(50); // being (re)started
    if (!this.running) throw new Error('haproxy is not running (it is being restarted)');
    const before = await this.showProc();
    if (!before) throw new Error('the haproxy master CLI gave no process list');
    const mark = this.lines;
    await socketCommand(this.options.masterSocket, 'reload', 5000).catch(() => '');
    const deadline = Date.now() + (this.options.timeoutMs ?? 15_000);
    let after: ProcInfo | undefined;
    for (;;) {
      await sleep(10);
      after = await this.showProc().catch(() => undefined);
      if (after && after.reloads > before.reloads) break;
      if (Date.now() > deadline)
        throw new Error(`haproxy did not report the reload within ${this.options.timeoutMs ?? 15_000} ms`);
    }
    if (after.failed > before.failed) {
      // The master's alerts (which listener it could not bind, ...) may still be on their way to us.
      const until = Date.now() + 500;
      while (!/Loading failure/.test(this.outputSince(mark)) && Date.now() < until) await sleep(10);
      throw new Error(
        `haproxy failed to load the new config; it keeps serving the old one:\n${this.outputSince(mark) || this.recentOutput()}`,
      );
    }
    const newest = after.workers[0];
    if (!newest) throw new Error('haproxy has no worker after the reload');
    for (;;) {
      if ((await workerPid(this.options.runtimeSocket).catch(() => undefined)) === newest.pid) return;
      if (Date.now() > deadline)
        throw new Error(`the new haproxy worker ${newest.pid} did not answer on ${this.options.runtimeSocket}`);
      await sleep(10);
    }
  }

  /** Stops HAProxy (SIGUSR1 soft stop, then SIGTERM, then SIGKILL). Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || !this.alive) return;
    const wait = async (ms: number): Promise<boolean> => {
      const done = await Promise.race([this.exited?.then(() => true), sleep(ms).then(() => false)]);
      return done === true;
    };
    child.kill('SIGUSR1');
    if (await wait(3000)) return;
    child.kill('SIGTERM');
    if (await wait(3000)) return;
    child.kill('SIGKILL');
    await wait(3000);
  }
}
