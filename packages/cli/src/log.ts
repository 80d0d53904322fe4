import { createLogger, type Logger } from '@glue/core';
import pretty from 'pino-pretty';
import type { CliOptions } from './options.js';

/** JSON lines or pino-pretty, both on stderr so stdout stays free. */
export function cliLogger(options: Pick<CliOptions, 'logLevel' | 'logFormat'>): Logger {
  if (options.logFormat === 'json') {
    return createLogger({ level: options.logLevel, destination: process.stderr });
  }
  const stream = pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, ignore: 'pid,hostname,name', singleLine: true, translateTime: 'SYS:HH:MM:ss.l' });
  return createLogger({ level: options.logLevel, destination: stream });
}
