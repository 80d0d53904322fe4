#!/usr/bin/env node
import { balancerMain } from '../balancer.js';

process.exitCode = await balancerMain(process.argv.slice(2));
