import { constants as osConstants } from 'node:os';
import { CommanderError } from 'commander';
import {
  ConfigError,
  createGlue,
  errorMessage,
  formatProblem,
  type Glue,
  GlueError,
  processStop,
  startOpsServer,
  type Logger,
} from '@glue/core';
import { cliLogger } from './log.js';
import { buildProgram, type CliOptions, EXIT, toCliOptions, UsageError } from './options.js';

export interface MainIo {
  stderr: (text: string) => void;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal: Promise<string>;
}

/** The CLI's single entry point: everything below throws, only this turns errors into exit codes. */
export async function main(argv: readonly string[], io?: Partial<MainIo>): Promise<number> {
  const stderr = io?.stderr ?? ((t: string) => void process.stderr.write(t));
  const program = buildProgram();
  let options: CliOptions;
  // `glue check ...` is `glue -t ...`.
  const args = argv[0] === 'check' ? ['-t', ...argv.slice(1)] : [...argv];
  try {
    program.parse(args, { from: 'user' });
    options = toCliOptions(program.opts());
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
        return EXIT.OK;
      return EXIT.USAGE; // commander already printed the message
    }
    stderr(`glue: ${errorMessage(err)}\n\n${program.helpInformation()}`);
    return EXIT.USAGE;
  }
  const logger = cliLogger(options);
  try {
    // A second SIGINT/SIGTERM while stopping: stop at once (glue.hurry()); the stop hooks still run.
    let hurry = (): void => undefined;
    const stop =
      io?.stopSignal !== undefined
        ? { signal: io.stopSignal, cancel: () => undefined }
        : processStop(logger, (sig) => {
            logger.warn({ signal: sig }, `second ${sig}: cancelling the handler runs in flight, stopping now`);
            hurry();
          });
    try {
      return await run(options, logger, stop.signal, (h) => (hurry = h));
    } finally {
      stop.cancel();
    }
  } catch (err) {
    return reportFatal(err, logger, stderr);
  }
}

async function run(
  options: CliOptions,
  logger: Logger,
  stopSignal: Promise<string>,
  onHurry: (hurry: () => void) => void,
): Promise<number> {
  const glue = createGlue({
    shutdownTimeoutMs: options.shutdownTimeoutMs,
    ...(options.configDirs.length > 0 ? { configDirs: options.configDirs } : {}),
    ...(options.dockerUrl !== undefined ? { dockerUrl: options.dockerUrl } : {}),
    logger,
    resolveFrom: [import.meta.url],
  });
  onHurry(() => glue.hurry());
  if (options.mode === 'check') return check(glue, (t) => void process.stdout.write(t));
  if (options.mode === 'once') {
    // A signal ends the run early: the none handler in flight finishes (bounded), no further one starts.
    let signalled: string | undefined;
    const interrupted = stopSignal.then(async (signal) => {
      signalled = signal;
      logger.info({ signal }, 'stopping: letting the handler in flight finish, starting no more');
      await glue.stop();
      return signal;
    });
    const outcome = await Promise.race([glue.runOnce(), interrupted]);
    if (signalled !== undefined) return signalExitCode(signalled);
    if (typeof outcome === 'string') return signalExitCode(outcome);
    return outcome.failed > 0 ? EXIT.FAILURE : EXIT.OK;
  }
  // SIGHUP reads the INI files again: all of them checked first, the set switched only when all are good.
  const onHangup = (): void => {
    if (glue.state !== 'watching') {
      logger.warn({ state: glue.state }, `SIGHUP while ${glue.state}: nothing reloaded`);
      return;
    }
    logger.info('SIGHUP: reading the INI files again');
    glue.reload().catch((err: unknown) => {
      const problems = err instanceof ConfigError ? err.problems.map(formatProblem) : [errorMessage(err)];
      logger.error({ problems }, `reload refused, the handlers keep running as they were:\n  ${problems.join('\n  ')}`);
    });
  };
  process.on('SIGHUP', onHangup);
  // Up before the start, so that /readyz says what Glue waits for while it connects.
  const ops =
    options.httpAddr === undefined
      ? undefined
      : await startOpsServer(options.httpAddr, { metrics: glue.metrics, readiness: () => glue.readiness() }, logger);
  try {
    await glue.start();
    logger.info({ engine: glue.address }, 'watching Docker events; SIGHUP reloads the INI files, SIGINT/SIGTERM stop');
    const signal = await stopSignal;
    logger.info({ signal }, 'stopping: letting handlers in flight finish');
    await glue.stop();
  } finally {
    process.off('SIGHUP', onHangup);
    await ops?.close();
  }
  logger.info('stopped');
  return EXIT.OK;
}

/** `glue check`: every problem on stdout, one a line; exit 0 when there is none, 2 otherwise. */
export async function check(glue: Glue, stdout: (text: string) => void): Promise<number> {
  const report = await glue.check();
  const lines = [...report.config.map(formatProblem), ...report.labels];
  for (const line of lines) stdout(`${line}\n`);
  const handlers = glue.handlerNames;
  const summary = [
    report.config.length > 0
      ? `${report.config.length} problem(s) in the INI files`
      : `${handlers.length} handler(s) loaded: ${handlers.join(', ') || '(none)'}`,
    report.engine.checked
      ? `${report.engine.containers} container(s) checked: ${report.labels.length} label problem(s)`
      : `container labels not checked: ${report.engine.reason}`,
  ];
  stdout(`glue check: ${summary.join('; ')}\n`);
  await glue.stop();
  return lines.length > 0 ? EXIT.USAGE : EXIT.OK;
}

/** The shell's convention for "ended by a signal": 128 + its number (SIGINT 130, SIGTERM 143). */
export function signalExitCode(signal: string): number {
  const n = (osConstants.signals as Record<string, number | undefined>)[signal];
  return n === undefined ? EXIT.FAILURE : 128 + n;
}

/** Errors an operator fixes in the command line or the config: exit 2. */
const USAGE_CODES: ReadonlySet<string> = new Set(['CONFIG_INVALID', 'HANDLER_LOAD', 'INVALID_PARAM', 'ENGINE_CONFIG']);

function reportFatal(err: unknown, logger: Logger, stderr: (t: string) => void): number {
  logger.flush?.();
  if (err instanceof ConfigError) {
    stderr(`glue: ${err.message}\n`);
    return EXIT.USAGE;
  }
  if (err instanceof UsageError) {
    stderr(`glue: ${err.message}\n`);
    return EXIT.USAGE;
  }
  if (err instanceof GlueError) {
    stderr(`glue: ${err.message}\n`);
    return USAGE_CODES.has(err.code) ? EXIT.USAGE : EXIT.FAILURE;
  }
  stderr(`glue: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.FAILURE;
}
