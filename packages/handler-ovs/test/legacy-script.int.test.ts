import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGlue, type Glue, type HandlerRun } from '@glue/core';
import { type DockerEngine, type OvsSwitch, requireBinary, startDockerd, startOvs, tempDir, waitFor } from '@glue/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// docker-glue's ovs.ini + ovs-handler.sh (examples/ovs/legacy) through the ScriptHandler, against a real
// dockerd and a private OVS. ovs-docker and docker find them through OVS_RUNDIR and DOCKER_HOST.
const legacy = fileURLToPath(new URL('../../../examples/ovs/legacy/', import.meta.url));
// The CLI's install is where the ScriptHandler (the old dotted class name) resolves from.
const cliEntry = new URL('../../cli/src/main.ts', import.meta.url).href;

let engine: DockerEngine;
let ovs: OvsSwitch;
let bridge: string;
let work: Awaited<ReturnType<typeof tempDir>>;
let glue: Glue | undefined;

beforeAll(async () => {
  for (const bin of ['ovs-docker', 'crudini', 'docker', 'ovs-vsctl']) requireBinary(bin);
  work = await tempDir('glue-ovs-legacy-');
  engine = await startDockerd();
  ovs = await startOvs();
  bridge = ovs.uniqueName('govl');
  await ovs.addBridge(bridge);
  process.env.OVS_RUNDIR = ovs.dir;
  process.env.DOCKER_HOST = engine.url;
});

afterAll(async () => {
  await glue?.stop().catch(() => undefined);
  await engine?.stop().catch(() => undefined);
  await ovs?.stop();
  await work?.cleanup();
});

describe("docker-glue's ovs.ini + ovs-handler.sh through the ScriptHandler", () => {
  it('plugs a --network none container with ovs-docker on start and unplugs it on die', async () => {
    const ini = readFileSync(join(legacy, 'ovs.ini'), 'utf8').replace(/^ovs-bridge=.*$/m, `ovs-bridge=${bridge}`).replace(/^#ovs-options=.*$/m, 'ovs-options=--ipaddress=10.204.0.2/24 --mtu=1450');
    writeFileSync(join(work.path, 'ovs.ini'), ini);
    copyFileSync(join(legacy, 'ovs-handler.sh'), join(work.path, 'ovs-handler.sh'));
    const runs: HandlerRun[] = [];
    glue = createGlue({ dockerUrl: engine.url, configDirs: [work.path], resolveFrom: [cliEntry] });
    glue.on('handler', (r) => runs.push(r));
    await glue.start();

    const c = await engine.run({ network: 'none' });
    const ports = async (): Promise<string[]> => (await ovs.ports(bridge)).filter((p) => p.externalIds.container_id === c.id).map((p) => p.name);
    await waitFor(async () => (await ports()).length === 1, { timeoutMs: 30_000, what: 'the port ovs-docker adds' });
    expect(await engine.cli(['exec', c.name, 'ip', '-o', 'addr', 'show', 'dev', 'eth0'])).toContain('10.204.0.2/24');
    expect(await engine.cli(['exec', c.name, 'cat', '/sys/class/net/eth0/mtu'])).toBe('1450');

    await engine.cli(['stop', '-t', '1', c.name]);
    await waitFor(async () => (await ports()).length === 0, { timeoutMs: 30_000, what: 'the port to go on die' });
    await waitFor(() => runs.some((r) => r.event === 'die' && r.containerId === c.id), { what: 'the die run' });
    expect(runs.filter((r) => !r.ok).map((r) => `${r.event}: ${String(r.error)}`)).toEqual([]);
  });
});
