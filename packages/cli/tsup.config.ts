import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base.js';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

export default defineConfig(
  packageBuild(
    { index: 'src/index.ts', 'bin/glue': 'src/bin/glue.ts' },
    { define: { __GLUE_VERSION__: JSON.stringify(version) } },
  ),
);
