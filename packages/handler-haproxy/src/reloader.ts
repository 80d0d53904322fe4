/**
 * How HAProxy picks up a new config, chosen once from the mode: `file` (Glue only writes it),
 * `external` (the operator's reload command, then the new worker on the runtime socket) or `managed`
 * (Glue runs HAProxy in master-worker mode and reloads it through the master CLI).
 */
import { GlueError, type Logger } from '@glue/core';
import { execa } from 'execa';
import { workerPid } from './haproxy-io.js';
import { ManagedHaproxy } from './managed.js';

export type Mode = 'managed' | 'external' | 'file';

export interface Reloader {
  readonly mode: Mode;
  /** False for `file`: the config is written, nothing reloads and no runtime API is used. */
  readonly reloads: boolean;
  /** Whether the running HAProxy can take runtime API commands now. */
  readonly runtimeReady: boolean;
  /** `managed`: the HAProxy Glue runs. */
  readonly managed: ManagedHaproxy | undefined;
  reload(): Promise<void>;
  stop(): Promise<void>;
}

export interface ReloaderOptions {
  mode: Mode;
  haproxyBin: string;
  configFile: string;
  /** `external`: argv of the reload command (no shell). */
  reloadCommand: readonly string[];
  runtimeSocket: string;
  masterSocket: string;
  reloadTimeoutMs: number;
  handlerName: string;
  logger: Logger;
}

class FileOnly implements Reloader {
  readonly mode = 'file' as const;
  readonly reloads = false;
  readonly runtimeReady = false;
  readonly managed = undefined;
  async reload(): Promise<void> {}
  async stop(): Promise<void> {}
}

/** The operator's HAProxy: the reload command, then wait (bounded) for a new worker on the runtime socket. */
class ExternalCommand implements Reloader {
  readonly mode = 'external' as const;
  readonly reloads = true;
  readonly managed = undefined;

  constructor(private readonly o: ReloaderOptions) {}

  get runtimeReady(): boolean {
    return this.o.runtimeSocket !== '';
  }

  async reload(): Promise<void> {
    const { runtimeSocket, reloadCommand, reloadTimeoutMs, handlerName, logger } = this.o;
    const before = runtimeSocket ? await workerPid(runtimeSocket).catch(() => undefined) : undefined;
    const [cmd, ...args] = reloadCommand;
    if (!cmd)
      throw new GlueError('HANDLER_FAILED', 'external mode needs a reload command (param reload-command)', {
        handler: handlerName,
      });
    const r = await execa(cmd, args, { reject: false, timeout: reloadTimeoutMs, stdin: 'ignore', all: true });
    if (r.failed) {
      throw new GlueError(
        'COMMAND_FAILED',
        `reload command ${JSON.stringify(reloadCommand.join(' '))} failed (${r.timedOut ? 'timed out' : `exit code ${r.exitCode}`}): ${String(r.all ?? '').trim()}`,
        { handler: handlerName },
      );
    }
    if (!runtimeSocket || before === undefined) return;
    const deadline = Date.now() + reloadTimeoutMs;
    for (;;) {
      const now = await workerPid(runtimeSocket).catch(() => undefined);
      if (now !== undefined && now !== before) return;
      if (Date.now() > deadline) {
        logger.warn(
          { socket: runtimeSocket, pid: before },
          `no new HAProxy worker answered on ${runtimeSocket} after the reload command; going on`,
        );
        return;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
  }

  async stop(): Promise<void> {}
}

/** Glue's own HAProxy, supervised and reloaded through the master CLI. */
class Managed implements Reloader {
  readonly mode = 'managed' as const;
  readonly reloads = true;
  readonly managed: ManagedHaproxy;

  constructor(o: ReloaderOptions) {
    this.managed = new ManagedHaproxy({
      haproxyBin: o.haproxyBin,
      configFile: o.configFile,
      masterSocket: o.masterSocket,
      runtimeSocket: o.runtimeSocket,
      logger: o.logger,
      timeoutMs: o.reloadTimeoutMs,
    });
  }

  get runtimeReady(): boolean {
    return this.managed.running;
  }

  reload(): Promise<void> {
    return this.managed.reload();
  }

  stop(): Promise<void> {
    return this.managed.stop();
  }
}

export function createReloader(o: ReloaderOptions): Reloader {
  if (o.mode === 'managed') return new Managed(o);
  if (o.mode === 'external') return new ExternalCommand(o);
  return new FileOnly();
}
