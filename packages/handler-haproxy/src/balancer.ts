/**
 * glue-balancer: docker-glue's standalone `docker-balancer`. The same engine as the HAProxy handler,
 * configured by flags instead of an INI file. Everything throws; only `balancerMain` turns errors
 * into exit codes.
 */
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, createGlue, createLogger, errorMessage, isKnownEvent, stopSignal, type LogLevel, type Logger } from '@glue/core';
import { HAProxyHandler } from './handler.js';
import { DEFAULTS, parseHaproxyParams } from './options.js';

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;
/** die,start plus what health and pause handling needs. */
export const DEFAULT_WATCH_SET = 'start,die,destroy,pause,unpause,health_status';

export interface BalancerIo {
  stderr: (text: string) => void;
  stopSignal: Promise<string>;
  logger: Logger;
  /** Called once the handler is running (tests read its stats). */
  onReady: (handler: HAProxyHandler) => void;
}

export function buildBalancerProgram(): Command {
  return new Command('glue-balancer')
    .description('Point HAProxy at containers from their glue_http_* / glue_tcp_* labels (docker-balancer)')
    .option('-1, --once', 'write the config once (and reload HAProxy), then exit')
    .option('-w, --watch', 'apply at start-up, then on Docker events until SIGINT/SIGTERM')
    .option('--watch-set <events>', 'events that trigger an apply (comma list)', DEFAULT_WATCH_SET)
    .option('--template <file>', 'nunjucks template for haproxy.cfg (default: built-in)')
    .option('--config-file <file>', 'the HAProxy config file Glue writes', DEFAULTS.configFile)
    .option('--docker-url <url>', 'Docker engine address; default $DOCKER_HOST or unix:///var/run/docker.sock')
    .addOption(new Option('--mode <mode>', 'managed: Glue runs HAProxy; external: reload with --reload-command; file: only write the file').choices(['managed', 'external', 'file']).default('external'))
    .option('--reload-command <argv>', 'external mode: command that reloads HAProxy (split on spaces, no shell)', DEFAULTS.reloadCommand)
    .option('--haproxy <bin>', 'haproxy binary', 'haproxy')
    .option('--http-bind <addr:port>', 'HTTP frontend address, or none', DEFAULTS.httpBind)
    .option('--tcp-address <addr>', 'address TCP frontends bind', DEFAULTS.tcpAddress)
    .option('--tcp-ports <min-max>', 'frontend ports glue_tcp_<port>_port labels may claim', DEFAULTS.tcpPorts)
    .option('--network <name>', 'Docker network whose address to use (label glue_network overrides)')
    .option('--run-dir <dir>', 'where the sockets go (default: the config file\'s directory)')
    .option('--runtime-socket <path>', 'HAProxy runtime API socket (managed: default <run-dir>/haproxy-runtime.sock; external: none)')
    .option('--master-socket <path>', 'managed mode: master CLI socket (default <run-dir>/haproxy-master.sock)')
    .option('--no-runtime-api', 'always reload, never use the runtime API fast path')
    .option('--spare-backends <n>', 'free host slots each reload declares: new hosts join through the runtime API while one is free (0: only freed slots)', String(DEFAULTS.spareBackends))
    .option('--host-map <file>', 'host map file for host-only routes, or none for one ACL rule per host (default: <config name>.hosts.map beside the config)')
    .option('--debounce-ms <ms>', 'quiet time that ends a burst of events', String(DEFAULTS.debounceMs))
    .option('--max-delay-ms <ms>', 'longest an event waits for its apply (servers-only changes)', String(DEFAULTS.maxDelayMs))
    .option('--min-reload-interval-ms <ms>', 'least time between two reloads; structural changes inside it coalesce', String(DEFAULTS.minReloadIntervalMs))
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'))
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', '\nExit codes: 0 done or stopped by SIGINT/SIGTERM, 1 failed (engine unreachable, HAProxy rejected the config), 2 bad usage.')
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
    if (err instanceof CommanderError) return err.code.startsWith('commander.help') ? EXIT.OK : EXIT.USAGE;
    throw err;
  }
  const usage = (msg: string): number => {
    stderr(`glue-balancer: ${msg}\n`);
    return EXIT.USAGE;
  };
  const once = raw.once === true;
  if (once === (raw.watch === true)) return usage(once ? '-1 and -w cannot be combined' : 'choose a mode: -1 (run once) or -w (watch)');
  if (once && raw.mode === 'managed') return usage('--mode managed needs -w (with -1 Glue would stop the HAProxy it just started); use --mode external or file');
  const events = String(raw.watchSet).split(',').map((e) => e.trim()).filter(Boolean);
  const unknown = events.filter((e) => !isKnownEvent(e));
  if (unknown.length > 0) return usage(`--watch-set: unknown event ${unknown.join(', ')}`);

  const params: Record<string, string> = {
    mode: String(raw.mode),
    'config-file': String(raw.configFile),
    'reload-command': String(raw.reloadCommand),
    haproxy: String(raw.haproxy),
    'http-bind': String(raw.httpBind),
    'tcp-address': String(raw.tcpAddress),
    'tcp-ports': String(raw.tcpPorts),
    'runtime-api': raw.runtimeApi === false ? 'off' : 'on',
    'debounce-ms': String(raw.debounceMs),
    'max-delay-ms': String(raw.maxDelayMs),
    'min-reload-interval-ms': String(raw.minReloadIntervalMs),
    'spare-backends': String(raw.spareBackends),
  };
  for (const [flag, key] of [['template', 'template'], ['network', 'network'], ['runDir', 'run-dir'], ['runtimeSocket', 'runtime-socket'], ['masterSocket', 'master-socket'], ['hostMap', 'host-map']] as const) {
    if (typeof raw[flag] === 'string') params[key] = raw[flag];
  }
  let options;
  try {
    options = parseHaproxyParams('glue-balancer', params, process.cwd());
  } catch (err) {
    return usage(errorMessage(err).replace(/^glue-balancer \[params\] /, '--'));
  }

  const logger = io.logger ?? createLogger({ level: raw.logLevel as LogLevel, destination: process.stderr });
  let handler: HAProxyHandler | undefined;
  const glue = createGlue({
    handlers: [{ name: 'glue-balancer', events: [...events, 'none'], handler: (agent) => (handler = HAProxyHandler.fromOptions(agent, options)) }],
    ...(typeof raw.dockerUrl === 'string' ? { dockerUrl: raw.dockerUrl } : {}),
    logger,
    noneDebounceMs: 0,
  });
  try {
    if (once) {
      const result = await glue.runOnce();
      return result.failed > 0 ? EXIT.FAILURE : EXIT.OK;
    }
    await glue.start();
    if (handler) io.onReady?.(handler);
    logger.info({ engine: glue.address, config: options.configFile, mode: options.mode }, 'glue-balancer watching Docker events; SIGINT/SIGTERM to stop');
    const signal = await (io.stopSignal ?? stopSignal());
    logger.info({ signal }, 'stopping');
    await glue.stop();
    return EXIT.OK;
  } catch (err) {
    await glue.stop().catch(() => undefined);
    logger.error({ err: errorMessage(err) }, `glue-balancer: ${errorMessage(err)}`);
    stderr(`glue-balancer: ${errorMessage(err)}\n`);
    return err instanceof ConfigError ? EXIT.USAGE : EXIT.FAILURE;
  }
}
