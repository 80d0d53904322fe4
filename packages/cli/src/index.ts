export { main } from './main.js';
export type { MainIo } from './main.js';
export { buildProgram, EXIT, toCliOptions, UsageError, VERSION } from './options.js';
export type { CliOptions } from './options.js';
