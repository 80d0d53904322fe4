import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base.js';

// Split: the bin loads the daemon (main.js and what it imports) only when it is not asked for help.
export default defineConfig(
  packageBuild({ index: 'src/index.ts', 'bin/glue': 'src/bin/glue.ts' }, { splitting: true }),
);
