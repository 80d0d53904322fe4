/**
 * Glue started through a package manager (`npx @glue/cli -w`, `npm exec`, `npm run`, `pnpm glue`)
 * runs under `sh -c` below the npm process. A SIGTERM to npm reaches the shell, which dies without
 * passing it on, and a SIGHUP kills npm outright: either way Glue would keep watching with nobody left
 * to stop it. So when a package manager started Glue, Glue watches that process and stops, as for
 * SIGTERM, when it is gone. Started any other way (systemd, a shell, `nohup`), nothing is watched.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from './logger.js';
import { stopSignal } from './signals.js';

/** What /proc says of one live process (a zombie counts as gone). */
export interface ProcInfo {
  ppid: number;
  /** Start time in clock ticks since boot: tells a process from a later one with the same PID. */
  start: string;
  /** Its command line, arguments joined by spaces (a retitled npm shows `npm exec …`). */
  cmdline: string;
}

export type ReadProc = (pid: number) => ProcInfo | undefined;

export function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid … starttime": comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return undefined; // exited, not yet reaped: gone
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    return { ppid: Number(fields[1]), start: fields[19] ?? '', cmdline };
  } catch {
    return undefined;
  }
}

/** Whether a command line is the package manager that ran us (`execPath` is `$npm_execpath`). */
export function isPackageManager(cmdline: string, execPath: string | undefined): boolean {
  if (execPath !== undefined && execPath !== '' && cmdline.includes(execPath)) return true;
  return /^(npm|npx|pnpm|yarn)( |$)/.test(cmdline) || /(^|\/)(npm|npx|pnpm|yarn)(-cli\.js|\.c?js)?( |$)/.test(cmdline);
}

/**
 * The nearest ancestor (at most `depth` up from `ppid`) that is the package manager, when `env` says
 * one started us (`npm_lifecycle_event`, set by npm, npx, pnpm and yarn).
 */
export function findLauncher(
  env: NodeJS.ProcessEnv,
  ppid: number,
  read: ReadProc = readProc,
  depth = 4,
): { pid: number; start: string } | undefined {
  if (env.npm_lifecycle_event === undefined) return undefined;
  for (let pid = ppid, i = 0; pid > 1 && i < depth; i++) {
    const info = read(pid);
    if (info === undefined) return undefined;
    if (isPackageManager(info.cmdline, env.npm_execpath)) return { pid, start: info.start };
    pid = info.ppid;
  }
  return undefined;
}

/**
 * Resolves with the launcher's PID once it has exited (polled every `intervalMs` on an unref'd
 * timer); never resolves when no package manager started us. `cancel()` stops polling.
 */
export function launcherGone(
  options: { env?: NodeJS.ProcessEnv; ppid?: number; read?: ReadProc; intervalMs?: number } = {},
): { gone: Promise<number>; cancel: () => void } {
  const read = options.read ?? readProc;
  const launcher = findLauncher(options.env ?? process.env, options.ppid ?? process.ppid, read);
  if (launcher === undefined) return { gone: new Promise(() => undefined), cancel: () => undefined };
  let timer: NodeJS.Timeout | undefined;
  const gone = new Promise<number>((resolve) => {
    timer = setInterval(() => {
      if (read(launcher.pid)?.start === launcher.start) return;
      clearInterval(timer);
      resolve(launcher.pid);
    }, options.intervalMs ?? 1000);
    timer.unref();
  });
  return { gone, cancel: () => clearInterval(timer) };
}

/**
 * What a CLI waits for to stop: the first SIGINT/SIGTERM (later ones go to `onRepeat`, see
 * `stopSignal`), or `SIGTERM` once the package manager that started the process is gone (logged).
 * `cancel()` stops watching the launcher.
 */
export function processStop(
  logger: Logger,
  onRepeat?: (signal: NodeJS.Signals) => void,
): { signal: Promise<NodeJS.Signals>; cancel: () => void } {
  const launcher = launcherGone();
  const signal = Promise.race([
    stopSignal(['SIGINT', 'SIGTERM'], onRepeat),
    launcher.gone.then((pid) => {
      logger.warn(
        { pid },
        `the package manager that started this process (pid ${pid}) is gone: stopping, as for SIGTERM`,
      );
      return 'SIGTERM' as const;
    }),
  ]);
  return { signal, cancel: launcher.cancel };
}
