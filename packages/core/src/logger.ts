import { pino, type Logger as PinoLogger } from 'pino';
import pretty from 'pino-pretty';

/** Glue logs through pino: structured, fast, one JSON object a line, or pino-pretty's single lines. */
export type Logger = PinoLogger;

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** `json`: one object a line; `pretty`: one readable line per entry (colours on a terminal). */
export type LogFormat = 'json' | 'pretty';

/**
 * A logger writing to `destination`. With `format` (the commands' `--log-format`) and no
 * destination, it writes to stderr, so stdout stays free; without either, pino's default (stdout).
 */
export function createLogger(
  options: { level?: LogLevel; format?: LogFormat; destination?: NodeJS.WritableStream } = {},
): Logger {
  const base = { level: options.level ?? 'info', base: { name: 'glue' } };
  if (options.format === 'pretty') {
    const stream = pretty({
      destination: options.destination ?? 2,
      sync: true,
      colorize: !options.destination && process.stderr.isTTY === true,
      ignore: 'pid,hostname,name',
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
    });
    return pino(base, stream);
  }
  const destination = options.destination ?? (options.format ? process.stderr : undefined);
  return destination ? pino(base, destination) : pino(base);
}

/** A logger that drops everything: the default for embedders who pass none and for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
