#!/usr/bin/env node
import { main } from '../main.js';

// Exit explicitly: a third-party handler's stray socket or timer must not keep a stopped daemon alive.
process.exit(await main(process.argv.slice(2)));
