import { createLogger, type Logger } from '@glue/core';
import type { CliOptions } from './options.js';

/** JSON lines or pino-pretty, both on stderr so stdout stays free. */
export function cliLogger(options: Pick<CliOptions, 'logLevel' | 'logFormat'>): Logger {
  return createLogger({ level: options.logLevel, format: options.logFormat });
}
