import { CommanderError } from 'commander';
import { buildProgram, EXIT } from './options.js';

/** Whether `argv` only asks for help or the version: answered by infoMain without loading the engine client. */
export function wantsInfo(argv: readonly string[]): boolean {
  return argv.some((a) => a === '-h' || a === '--help' || a === '--version');
}

/** `glue -h` / `glue --version`: commander alone (no @glue/core, no dockerode), so it answers at once. */
export function infoMain(argv: readonly string[]): number {
  try {
    buildProgram().parse([...argv], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    return ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(err.code) ? EXIT.OK : EXIT.USAGE;
  }
  return EXIT.OK;
}
