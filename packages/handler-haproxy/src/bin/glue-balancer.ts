#!/usr/bin/env node
console.error("glue-balancer: not built yet");
process.exit(1);
