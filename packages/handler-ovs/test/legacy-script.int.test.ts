import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGlue, type Glue, type HandlerRun } from '@glue/core';
import {
  type DockerEngine,
  type OvsSwitch,
  requireBinary,
  startDockerd,
  startOvs,
  tempDir,
  waitFor,
} from '@glue/testkit';
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
  for (const bin of ['ovs-docker', 'uuidgen', 'crudini', 'docker', 'ovs-vsctl']) requireBinary(bin);
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

describe("examples/ovs load as shipped, through the CLI's handler resolution", () => {
  it.each(['docker-glue.d', 'legacy'])('examples/ovs/%s', async (sub) => {
    const g = createGlue({
      dockerUrl: engine.url,
      configDirs: [fileURLToPath(new URL(`../../../examples/ovs/${sub}/`, import.meta.url))],
      resolveFrom: [cliEntry],
    });
    await g.load();
    expect(g.handlerNames).toEqual(['ovs.ini']);
  });

  it('a bad ovs-options value stops loading with the file, key and reason', async () => {
    const dir = join(work.path, 'bad');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'ovs.ini'),
      '[handler]\nclass=@glue/handler-ovs#OVSHandler\nevents=start,die,destroy,none\n\n[params]\novs-bridge=br-int\novs-options=--vlan=4095\n',
    );
    const g = createGlue({ dockerUrl: engine.url, configDirs: [dir], resolveFrom: [cliEntry] });
    await expect(g.load()).rejects.toThrow(
      /ovs\.ini:7 \[params\] ovs-options: --vlan="4095": VLAN tag 4095 is not between 0 and 4094/,
    );
  });
});

describe("docker-glue's ovs.ini + ovs-handler.sh through the ScriptHandler", () => {
  it('plugs a --network none container with ovs-docker on start and unplugs it on die', async () => {
    const ini = readFileSync(join(legacy, 'ovs.ini'), 'utf8')
      .replace(/^ovs-bridge=.*$/m, `ovs-bridge=${bridge}`)
      .replace(/^#ovs-options=.*$/m, 'ovs-options=--ipaddress=10.204.0.2/24 --mtu=1450');
    writeFileSync(join(work.path, 'ovs.ini'), ini);
    copyFileSync(join(legacy, 'ovs-handler.sh'), join(work.path, 'ovs-handler.sh'));
    const runs: HandlerRun[] = [];
    glue = createGlue({ dockerUrl: engine.url, configDirs: [work.path], resolveFrom: [cliEntry] });
    glue.on('handler', (r) => runs.push(r));
    await glue.start();

    const c = await engine.run({ network: 'none' });
    const ports = async (): Promise<string[]> =>
      (await ovs.ports(bridge)).filter((p) => p.externalIds.container_id === c.id).map((p) => p.name);
    // ovs-docker adds the OVS port first and configures the address after: wait for the script to finish.
    await waitFor(() => runs.some((r) => r.event === 'start' && r.containerId === c.id), {
      timeoutMs: 30_000,
      what: 'the start run of ovs-handler.sh',
    });
    expect(await ports()).toHaveLength(1);
    expect(await engine.cli(['exec', c.name, 'ip', '-o', 'addr', 'show', 'dev', 'eth0'])).toContain('10.204.0.2/24');
    expect(await engine.cli(['exec', c.name, 'cat', '/sys/class/net/eth0/mtu'])).toBe('1450');

    await engine.cli(['stop', '-t', '1', c.name]);
    await waitFor(async () => (await ports()).length === 0, { timeoutMs: 30_000, what: 'the port to go on die' });
    await waitFor(() => runs.some((r) => r.event === 'die' && r.containerId === c.id), { what: 'the die run' });
    expect(runs.filter((r) => !r.ok).map((r) => `${r.event}: ${String(r.error)}`)).toEqual([]);
  });
});
