import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import {
  type Agent,
  BaseHandler,
  containerName,
  type HandlerContext,
  type IniDocument,
  type Logger,
  param,
  readParams,
} from '@glue/core';
import { execa } from 'execa';
import { findScript } from './script-path.js';

export const DEFAULT_SCRIPT_TIMEOUT_S = 30;
const MIN_SCRIPT_TIMEOUT_S = 0.1;
const MAX_SCRIPT_TIMEOUT_S = 86_400;
/** After SIGTERM, how long a script's process group has before SIGKILL. */
const KILL_GRACE_MS = 2_000;

/**
 * Runs `script INI_PATH EVENT CONTAINER_ID` on each event, exactly as docker-glue did, without a shell.
 * Params: `script` (required), `timeout` (seconds, default 30).
 */
export class ScriptHandler extends BaseHandler {
  readonly script: string;
  readonly timeoutMs: number;
  /** Glue's per-run bound is raised to this: the script's timeout, the SIGTERM-to-SIGKILL grace, and a margin. */
  readonly runTimeoutMs: number;

  constructor(agent: Agent, iniFile: string, ini: IniDocument) {
    super(agent, iniFile, ini);
    const p = readParams(
      this.name,
      this.params,
      {
        script: (raw) => {
          if (raw === undefined) return { ok: false, reason: 'missing: the path of the script to run' };
          const found = findScript(raw, dirname(iniFile));
          return 'error' in found ? { ok: false, reason: found.error } : { ok: true, value: found.path };
        },
        // A day at most (Node's timers end at 24.8 days, and a longer bound would be no bound); at
        // least 0.1 s, so a script can start at all.
        timeout: param.number({
          default: DEFAULT_SCRIPT_TIMEOUT_S,
          min: MIN_SCRIPT_TIMEOUT_S,
          max: MAX_SCRIPT_TIMEOUT_S,
          unit: 'seconds',
          scale: 1000,
        }),
      },
      // Other keys are the script's (docker-glue passed them on: demo-option in test.ini).
      { allowUnknown: true },
    );
    this.script = p.script;
    this.timeoutMs = p.timeout;
    this.runTimeoutMs = this.timeoutMs + KILL_GRACE_MS + 1_000;
  }

  async handle(event: string, containerId: string, context?: HandlerContext): Promise<void> {
    const name = containerName(context?.container ?? this.agent.inspect(containerId));
    // Own process group, so a timeout or a stop ends the script and whatever it started.
    const child = execa(this.script, [this.iniFile, event, containerId], {
      reject: false,
      detached: true,
      stdin: 'ignore',
      env: { GLUE_EVENT: event, GLUE_CONTAINER_ID: containerId, GLUE_CONTAINER_NAME: name, GLUE_INI: this.iniFile },
      // Output is logged line by line as the script prints it (below), not kept.
      buffer: false,
    });
    const fields = { script: this.script, event, container: containerId.slice(0, 12) };
    const logged = Promise.all([
      logLines(child.stdout, (line) => this.logger.info({ ...fields, stream: 'stdout' }, line), this.logger, fields),
      logLines(child.stderr, (line) => this.logger.warn({ ...fields, stream: 'stderr' }, line), this.logger, fields),
    ]);
    let ended: 'timeout' | 'cancelled' | undefined;
    const killGroup = (why: 'timeout' | 'cancelled'): void => {
      ended ??= why;
      signalGroup(child.pid, 'SIGTERM');
      setTimeout(() => signalGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS).unref();
    };
    const timer = setTimeout(() => killGroup('timeout'), this.timeoutMs);
    const onAbort = (): void => killGroup('cancelled');
    if (context?.signal.aborted) onAbort();
    else context?.signal.addEventListener('abort', onAbort, { once: true });
    const result = await child.finally(() => {
      clearTimeout(timer);
      context?.signal.removeEventListener('abort', onAbort);
    });
    await logged;
    if (ended === 'timeout') {
      throw this.error('HANDLER_TIMEOUT', `${this.script} killed after ${this.timeoutMs / 1000} s (params timeout)`);
    }
    if (ended === 'cancelled')
      throw this.error('HANDLER_CANCELLED', `${this.script} stopped: the handler run was cancelled`);
    if (result.failed) {
      const why =
        result.exitCode !== undefined
          ? `exited with code ${result.exitCode}`
          : result.signal
            ? `killed by ${result.signal}`
            : result.shortMessage;
      throw this.error('COMMAND_FAILED', `${this.script} ${why}`);
    }
  }
}

/** At most this many lines of one stream are logged per run; the rest are counted. */
export const MAX_LOGGED_LINES = 1000;
/** Longer lines are cut (one log line stays readable, and a binary blob does not flood the log). */
export const MAX_LINE_CHARS = 4096;

/** Logs each non-empty line of `stream` as it arrives; resolves once the stream has ended. */
async function logLines(
  stream: Readable | null,
  log: (line: string) => void,
  logger: Logger,
  fields: Record<string, string>,
): Promise<void> {
  if (!stream) return;
  let count = 0;
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    if (line.trim() === '') continue;
    count += 1;
    if (count <= MAX_LOGGED_LINES)
      log(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}… (${line.length} chars)` : line);
  }
  if (count > MAX_LOGGED_LINES)
    logger.warn(fields, `${count - MAX_LOGGED_LINES} more lines of output not logged (${MAX_LOGGED_LINES} per run)`);
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
