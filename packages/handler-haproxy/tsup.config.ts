import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base.js';

// Split: the glue-balancer bin, the index and the bench's internal entry share one copy of the code.
export default defineConfig(
  packageBuild(
    { index: 'src/index.ts', internal: 'src/internal.ts', 'bin/glue-balancer': 'src/bin/glue-balancer.ts' },
    { splitting: true },
  ),
);
