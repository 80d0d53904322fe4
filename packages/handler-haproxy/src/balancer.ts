/**
 * glue-balancer: docker-glue's standalone `docker-balancer`. The same engine as the HAProxy handler,
 * configured by flags instead of an INI file. Everything throws; only `balancerMain` turns errors
 * into exit codes.
 */
import { Command, CommanderError, Option } from 'commander';
import {
  ConfigError,
  createGlue,
  createLogger,
  errorMessage,
  isKnownEvent,
  ParamError,
  processStop,
  buildInfo,
  createMetrics,
  startOpsServer,
  type OpsServer,
  type LogFormat,
  type LogLevel,
  type Logger,
} from '@glue/core';
import { checkBinary, createRouter, HAProxyHandler } from './handler.js';
import { observeRouter, routerProblem } from './metrics.js';
import type { Router } from './router.js';
import { type HaproxyOptions, PARAM_KEYS, PARAM_SPEC, type ParamSpec, parseHaproxyParams } from './options.js';

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

declare const __GLUE_VERSION__: string;
/** This package's version (set by the build; `0.0.0-dev` when run from src/). */
export const VERSION = typeof __GLUE_VERSION__ === 'string' ? __GLUE_VERSION__ : '0.0.0-dev';
/** start, kill (drain before stop), die, plus what health and pause handling needs. */
export const DEFAULT_WATCH_SET = 'start,kill,die,destroy,pause,unpause,health_status';

export interface BalancerIo {
  stderr: (text: string) => void;
  stopSignal: Promise<string>;
  logger: Logger;
  /** Called once the balancer is running (tests read its stats). */
  onReady: (router: Router) => void;
}

/** `config-file` -> `configFile`: the name commander gives a flag's value. */
const camel = (key: string): string => key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function buildBalancerProgram(): Command {
  const program = new Command('glue-balancer')
    .description('Point HAProxy at containers from their glue_http_* / glue_tcp_* labels (docker-balancer)')
    .version(VERSION, '--version', 'print the version')
    .option('-1, --once', 'write the config once (and reload HAProxy), then exit')
    .option('-w, --watch', 'apply at start-up, then on Docker events until SIGINT/SIGTERM')
    .option('--watch-set <events>', 'events that trigger an apply (comma list)', DEFAULT_WATCH_SET)
    .option('--docker-url <url>', 'Docker engine address; default $DOCKER_HOST or unix:///var/run/docker.sock')
    .option(
      '--http-addr <host:port>',
      'with -w: serve /metrics (Prometheus), /livez and /readyz on this address, e.g. 127.0.0.1:9465 (off by default)',
    );
  // One flag per [params] key, from the same table the INI reader uses. No commander defaults: a flag
  // not given is a key not given, and the params reader applies the default.
  for (const [key, spec] of Object.entries(PARAM_SPEC) as Array<[string, ParamSpec]>) {
    const option = new Option(
      `--${key} <${spec.arg}>`,
      spec.default === undefined ? spec.help : `${spec.help} (default: ${spec.default})`,
    );
    program.addOption(spec.choices ? option.choices(spec.choices) : option);
  }
  return program
    .option('--no-runtime-api', 'always reload, never use the runtime API (same as --runtime-api off)')
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
        .default('info'),
    )
    .addOption(
      new Option('--log-format <format>', 'log format: json (one object a line) or pretty')
        .choices(['json', 'pretty'])
        .default('pretty'),
    )
    .helpOption('-h, --help', 'show this help')
    .addHelpText(
      'after',
      '\nEvery flag from --source on is the [params] key of the same name in an INI file.\nExit codes: 0 done or stopped by SIGINT/SIGTERM, 1 failed (engine unreachable, HAProxy rejected the config), 2 bad usage.',
    )
    .exitOverride()
    .allowExcessArguments(false);
}

export async function balancerMain(argv: readonly string[], io: Partial<BalancerIo> = {}): Promise<number> {
  const stderr = io.stderr ?? ((t: string) => void process.stderr.write(t));
  const program = buildBalancerProgram();
  program.configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: stderr });
  let raw: Record<string, unknown>;
  try {
    program.parse([...argv], { from: 'user' });
    raw = program.opts();
  } catch (err) {
    if (err instanceof CommanderError)
      return err.code.startsWith('commander.help') || err.code === 'commander.version' ? EXIT.OK : EXIT.USAGE;
    throw err;
  }
  const usage = (msg: string): number => {
    stderr(`glue-balancer: ${msg}\n`);
    return EXIT.USAGE;
  };
  const once = raw.once === true;
  if (once === (raw.watch === true))
    return usage(once ? '-1 and -w cannot be combined' : 'choose a mode: -1 (run once) or -w (watch)');
  if (once && raw.mode === 'managed')
    return usage(
      '--mode managed needs -w (with -1 Glue would stop the HAProxy it just started); use --mode external or file',
    );
  const httpAddr = typeof raw.httpAddr === 'string' ? raw.httpAddr : undefined;
  if (httpAddr !== undefined && once) return usage('--http-addr is for -w (a run with -1 ends before a scrape)');
  const events = String(raw.watchSet)
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const unknown = events.filter((e) => !isKnownEvent(e));
  if (unknown.length > 0) return usage(`--watch-set: unknown event ${unknown.join(', ')}`);

  const params: Record<string, string> = {};
  for (const key of PARAM_KEYS) {
    const value = raw[camel(key)];
    if (typeof value === 'string') params[key] = value;
  }
  if (raw.runtimeApi === false) params['runtime-api'] = 'off';
  let options;
  try {
    options = parseHaproxyParams('glue-balancer', params, process.cwd());
  } catch (err) {
    if (err instanceof ParamError)
      return usage(err.problems.map((p) => `--${p.key}: ${p.reason}`).join('\nglue-balancer: '));
    throw err;
  }

  const logger = io.logger ?? createLogger({ level: raw.logLevel as LogLevel, format: raw.logFormat as LogFormat });
  if (options.source === 'etcd') {
    if (typeof raw.dockerUrl === 'string') return usage('--docker-url does not apply with --source etcd');
    return runFromEtcd(options, once, httpAddr, logger, io, stderr);
  }
  let handler: HAProxyHandler | undefined;
  let ops: OpsServer | undefined;
  const glue = createGlue({
    handlers: [
      {
        name: 'glue-balancer',
        events: [...events, 'none'],
        handler: (agent) => (handler = HAProxyHandler.fromOptions(agent, options)),
      },
    ],
    ...(typeof raw.dockerUrl === 'string' ? { dockerUrl: raw.dockerUrl } : {}),
    logger,
    noneDebounceMs: 0,
  });
  try {
    if (once) {
      const result = await glue.runOnce();
      return result.failed > 0 ? EXIT.FAILURE : EXIT.OK;
    }
    // Listening before the start: a SIGTERM during a slow first apply stops cleanly once it is done.
    const stop = io.stopSignal ?? processStop(logger).signal;
    ignoreHangup(logger);
    ops = httpAddr
      ? await startOpsServer(httpAddr, { metrics: glue.metrics, readiness: () => glue.readiness() }, logger)
      : undefined;
    await glue.start();
    if (handler) io.onReady?.(handler.router);
    logger.info(
      { engine: glue.address, config: options.configFile, mode: options.mode },
      'glue-balancer watching Docker events; SIGINT/SIGTERM to stop',
    );
    const signal = await stop;
    logger.info({ signal }, 'stopping');
    await glue.stop();
    return EXIT.OK;
  } catch (err) {
    await glue.stop().catch(() => undefined);
    logger.error({ err: errorMessage(err) }, `glue-balancer: ${errorMessage(err)}`);
    stderr(`glue-balancer: ${errorMessage(err)}\n`);
    return err instanceof ConfigError || isParamError(err) ? EXIT.USAGE : EXIT.FAILURE;
  } finally {
    await ops?.close();
  }
}

const isParamError = (err: unknown): boolean => (err as { code?: unknown } | undefined)?.code === 'INVALID_PARAM';

/** --source etcd: no engine, no Glue daemon: the etcd index feeds the router directly. */
async function runFromEtcd(
  options: HaproxyOptions,
  once: boolean,
  httpAddr: string | undefined,
  logger: Logger,
  io: Partial<BalancerIo>,
  stderr: (text: string) => void,
): Promise<number> {
  let router: Router | undefined;
  let ops: OpsServer | undefined;
  try {
    checkBinary(options, 'glue-balancer');
    const made = createRouter('glue-balancer', options, logger, undefined, () => once);
    router = made;
    // Listening before the start: a SIGTERM during a slow first apply stops cleanly once it is done.
    const stop = once ? undefined : (io.stopSignal ?? processStop(logger).signal);
    if (!once) ignoreHangup(logger);
    let watching = false;
    void stop?.then(() => (watching = false));
    if (httpAddr !== undefined) {
      const metrics = createMetrics();
      buildInfo(metrics);
      observeRouter(metrics, 'glue-balancer', made);
      ops = await startOpsServer(
        httpAddr,
        {
          metrics,
          readiness: async () => [
            watching ? { name: 'watching' } : { name: 'watching', problem: 'starting or stopping' },
            { name: 'glue-balancer', ...optional(routerProblem(made)) },
          ],
        },
        logger,
      );
    }
    await router.start();
    watching = true;
    if (once) {
      await router.stop();
      return EXIT.OK;
    }
    io.onReady?.(router);
    logger.info(
      {
        etcd: options.etcd?.endpoints.join(','),
        prefix: options.etcd?.prefix,
        config: options.configFile,
        mode: options.mode,
      },
      'glue-balancer watching the etcd index; SIGINT/SIGTERM to stop',
    );
    const signal = await stop;
    logger.info({ signal }, 'stopping');
    await router.stop();
    return EXIT.OK;
  } catch (err) {
    await router?.stop().catch(() => undefined);
    logger.error({ err: errorMessage(err) }, `glue-balancer: ${errorMessage(err)}`);
    stderr(`glue-balancer: ${errorMessage(err)}\n`);
    return isParamError(err) ? EXIT.USAGE : EXIT.FAILURE;
  } finally {
    await ops?.close();
  }
}

const optional = (problem: string | undefined): { problem?: string } => (problem === undefined ? {} : { problem });

/** SIGHUP (a log rotation, a closed terminal) must not kill glue-balancer: it has no files to read again. */
function ignoreHangup(logger: Logger): void {
  if (process.listenerCount('SIGHUP') > 0) return;
  process.on('SIGHUP', () =>
    logger.info('SIGHUP: glue-balancer takes its settings from its flags, there is nothing to reload'),
  );
}
