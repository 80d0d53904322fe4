#!/usr/bin/env node
import { balancerMain } from '../balancer.js';

// `glue-balancer -h | head`: a closed pipe is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
process.exitCode = await balancerMain(process.argv.slice(2));
