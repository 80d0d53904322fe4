import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { handlerContractSuite } from '@glue/core/contract';
import { type OvsSwitch, startOvs } from '@glue/testkit';
import { afterAll, beforeAll } from 'vitest';
import { OVSHandler } from '../src/index.js';

// The contract suite once more, with the real class and its real runner against a private Open vSwitch
// (the unit file runs it on a host model). The socket path must be known before the switch starts.
const dir = mkdtempSync(join(tmpdir(), 'glue-ovs-contract-'));
const bridge = `govc${(process.pid % 100000).toString(36)}`;
let ovs: OvsSwitch | undefined;

beforeAll(async () => {
  ovs = await startOvs({ dir });
  await ovs.addBridge(bridge);
});

afterAll(async () => {
  await ovs?.stop();
});

handlerContractSuite({
  name: 'OVSHandler on a real Open vSwitch',
  handlerClass: OVSHandler,
  params: { 'ovs-bridge': bridge, 'ovs-db': `unix:${join(dir, 'db.sock')}` },
});
