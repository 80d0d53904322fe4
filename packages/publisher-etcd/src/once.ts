/** CLI options of `glue` that take a value: the argument after them is not a flag. */
const WITH_VALUE = new Set(['-c', '--config-dir', '--docker-url', '--log-level', '--log-format']);

/**
 * Whether a `glue` command line asks for run-once mode (`-1`, `--once`, or `-1` in a cluster of short
 * flags such as `-1c dir`). @glue/core's Agent does not tell a handler whether the daemon runs once,
 * so the publisher reads its own process's arguments (together with the engine already being known
 * when `start()` runs, which is true only of `Glue.runOnce()`).
 */
export function argvRunsOnce(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === '--') return false;
    if (arg === '--once') return true;
    if (WITH_VALUE.has(arg)) {
      i += 1;
      continue;
    }
    if (!/^-[^-]/.test(arg)) continue;
    // A cluster of short flags: `c` takes the rest (or the next argument) as its value.
    for (const ch of arg.slice(1)) {
      if (ch === '1') return true;
      if (ch === 'c') {
        if (arg.endsWith('c')) i += 1;
        break;
      }
    }
  }
  return false;
}
