#!/usr/bin/env node
import { infoMain, wantsInfo } from '../info.js';

/** Resolves once everything written to `stream` so far has reached the OS (a pipe may be full). */
const drained = (stream: NodeJS.WriteStream): Promise<void> =>
  new Promise((resolve) => (stream.writableLength === 0 ? resolve() : stream.write('', () => resolve())));

const argv = process.argv.slice(2);
// Help and version without loading the daemon (core, dockerode): `glue -h` answers at once.
const code = wantsInfo(argv) ? infoMain(argv) : await (await import('../main.js')).main(argv);
// Exit explicitly: a third-party handler's stray socket or timer must not keep a stopped daemon alive.
// But only once stdout and stderr are flushed: a report of 1,000 bad files is more than a pipe holds.
await Promise.all([drained(process.stdout), drained(process.stderr)]);
process.exit(code);
