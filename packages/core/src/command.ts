/**
 * Running a program the one way Glue's handlers do (ovs-vsctl, ip, nft, conntrack): an argument array,
 * never a shell, bounded in time, cancellable, the outcome reported rather than thrown.
 */
import { execa } from 'execa';

/** What one command printed and how it ended. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
  /** Written to the program's stdin (e.g. `ip -batch -` commands); stdin is closed otherwise. */
  input?: string | undefined;
}

/**
 * Runs one program with an argument array (never a shell) and reports the outcome without throwing
 * on a non-zero exit: callers decide what a failure means. Injected so tests can record commands.
 */
export type CommandRunner = (file: string, args: readonly string[], options?: CommandOptions) => Promise<CommandResult>;

export const DEFAULT_COMMAND_TIMEOUT_MS = 15_000;

/** The real runner: execa, argument arrays, no shell, bounded in time. */
export const execaRunner: CommandRunner = async (file, args, options = {}) => {
  const result = await execa(file, [...args], {
    reject: false,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    timeout: options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    ...(options.signal ? { cancelSignal: options.signal } : {}),
    maxBuffer: 16 * 1024 * 1024,
  });
  const stderr = typeof result.stderr === 'string' ? result.stderr : '';
  const why = result.timedOut
    ? 'timed out'
    : result.isCanceled
      ? 'cancelled'
      : result.exitCode === undefined
        ? result.shortMessage
        : '';
  return {
    exitCode: result.exitCode ?? -1,
    stdout: typeof result.stdout === 'string' ? result.stdout : '',
    stderr: why ? `${stderr}${stderr ? '\n' : ''}${why}` : stderr,
  };
};

/** `file arg arg` for messages, quoting what needs it. */
export function formatCommand(file: string, args: readonly string[]): string {
  return [file, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}
