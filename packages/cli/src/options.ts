import { Command, InvalidArgumentError, Option } from 'commander';
import type { LogLevel } from '@glue/core';

declare const __GLUE_VERSION__: string;
export const VERSION = typeof __GLUE_VERSION__ === 'string' ? __GLUE_VERSION__ : '0.0.0-dev';

/** Exit codes, documented in the README and `glue -h`. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

export interface CliOptions {
  mode: 'once' | 'watch' | 'check';
  configDirs: string[];
  dockerUrl: string | undefined;
  logLevel: LogLevel;
  logFormat: 'json' | 'pretty';
  /** How long a stop waits for the handler runs in flight (and each stop hook), ms. */
  shutdownTimeoutMs: number;
  /** `--http-addr HOST:PORT`: the ops endpoint (/metrics, /livez, /readyz), with -w only. */
  httpAddr: string | undefined;
}

/** A command line Glue cannot run with: usage goes to stderr, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function buildProgram(): Command {
  return new Command('glue')
    .description('Glue: run the handlers of docker-glue.d/*.ini on Docker events')
    .option('-1, --once', 'run the "none" handlers once, then exit')
    .option('-w, --watch', 'run "none" at start-up, then handle Docker events until SIGINT/SIGTERM')
    .option(
      '-t, --test',
      "check the INI files and every container's glue_* labels, print each problem, exit 0 or 2 (also: glue check)",
    )
    .option(
      '-c, --config-dir <dir>',
      'handler INI dir (repeatable); default: first of ./docker-glue.d, /etc/docker-glue.d, /etc/glue.d',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option(
      '--docker-url <url>',
      'Docker engine address (unix:///path or tcp://host:port); default: $DOCKER_HOST or unix:///var/run/docker.sock',
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(LEVELS).default('info'))
    .addOption(
      new Option('--log-format <format>', 'log format: json (one object a line) or pretty')
        .choices(['json', 'pretty'])
        .default('pretty'),
    )
    .option(
      '--shutdown-timeout <seconds>',
      'how long SIGINT/SIGTERM waits for handler runs in flight before cancelling them (a second signal: at once)',
      '10',
    )
    .option(
      '--http-addr <host:port>',
      'with -w: serve /metrics (Prometheus), /livez and /readyz on this address, e.g. 127.0.0.1:9464 (off by default)',
    )
    .version(VERSION, '--version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .addHelpText(
      'after',
      '\nExit codes: 0 done (-w: also when stopped by SIGINT/SIGTERM), 1 engine unreachable with -1 or a handler failed with -1, 2 bad usage or configuration (-t: any problem found), 130/143 -1 stopped early by SIGINT/SIGTERM.',
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) })
    .allowExcessArguments(false);
}

export function toCliOptions(raw: Record<string, unknown>): CliOptions {
  const once = raw.once === true;
  const watch = raw.watch === true;
  const test = raw.test === true;
  const modes = [once && '-1', watch && '-w', test && '-t'].filter(Boolean);
  if (modes.length > 1) throw new UsageError(`${modes.join(' and ')} cannot be combined`);
  if (modes.length === 0) throw new UsageError('choose a mode: -1 (run once), -w (watch) or -t (check)');
  if (typeof raw.dockerUrl === 'string' && raw.dockerUrl.trim() === '')
    throw new InvalidArgumentError('--docker-url is empty');
  const shutdown = (typeof raw.shutdownTimeout === 'string' ? raw.shutdownTimeout : '10').trim();
  if (!/^\d+(\.\d+)?$/.test(shutdown) || Number(shutdown) > 3600)
    throw new InvalidArgumentError(
      `--shutdown-timeout ${JSON.stringify(shutdown)} is not a number of seconds from 0 to 3600`,
    );
  const httpAddr = typeof raw.httpAddr === 'string' ? raw.httpAddr : undefined;
  if (httpAddr !== undefined && !watch)
    throw new UsageError('--http-addr is for -w (a run with -1 or -t ends before a scrape)');
  return {
    httpAddr,
    shutdownTimeoutMs: Math.round(Number(shutdown) * 1000),
    mode: once ? 'once' : watch ? 'watch' : 'check',
    configDirs: (raw.configDir as string[] | undefined) ?? [],
    dockerUrl: raw.dockerUrl as string | undefined,
    logLevel: raw.logLevel as LogLevel,
    logFormat: raw.logFormat as 'json' | 'pretty',
  };
}
