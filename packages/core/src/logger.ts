import { pino, type Logger as PinoLogger } from 'pino';

/** Glue logs through pino: structured, fast, one JSON object a line (pretty-printing is the CLI's business). */
export type Logger = PinoLogger;

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export function createLogger(options: { level?: LogLevel; destination?: NodeJS.WritableStream } = {}): Logger {
  const base = { level: options.level ?? 'info', base: { name: 'glue' } };
  return options.destination ? pino(base, options.destination) : pino(base);
}

/** A logger that drops everything: the default for embedders who pass none and for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
