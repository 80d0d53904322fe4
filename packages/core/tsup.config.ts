import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base.js';

export default defineConfig(
  packageBuild(
    {
      index: 'src/index.ts',
      contract: 'src/contract.ts',
      internal: 'src/internal.ts',
      'core-hooks': 'src/core-hooks.ts',
    },
    { external: ['vitest'] },
  ),
);
