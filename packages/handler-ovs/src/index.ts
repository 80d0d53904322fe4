export { DEFAULT_COMMAND_TIMEOUT_MS, execaRunner, formatCommand } from './runner.js';
export type { CommandResult, CommandRunner, RunOptions } from './runner.js';
export * from './validate.js';
