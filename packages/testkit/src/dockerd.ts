import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, rmSync, symlinkSync, writeFileSync, closeSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { execa } from 'execa';
import { requireBinary } from './binaries.js';
import { safeRead } from './files.js';
import { inNetns } from './netns.js';
import { isAlive, pidsMentioning, stopPid } from './processes.js';
import { waitFor } from './wait.js';

export const TEST_IMAGE = 'glue-test/busybox';

export interface RunOptions {
  name?: string;
  labels?: Record<string, string>;
  /** Command; default: busybox httpd serving /www, whose index.html says the container's name. */
  cmd?: string[];
  /** `none`, `bridge` (default) or a user network name. */
  network?: string;
  /** A fixed IPv4 address on `network` (a user network created with a subnet). */
  ip?: string;
  /** Container ports to publish, each on `hostIp` (this engine's own addresses only) and a free host port. */
  publish?: Array<{ port: number; hostIp: string }>;
  env?: string[];
  healthcheck?: { test: string[]; intervalMs: number; retries?: number; startPeriodMs?: number };
  /** Wait for `running` before returning (default true). */
  waitRunning?: boolean;
  restartPolicy?: 'no' | 'always' | 'unless-stopped';
  capAdd?: string[];
  /** Bind mounts (`/usr:/usr:ro`): e.g. the host's programs for a container that needs more than busybox. */
  binds?: string[];
}

export interface TestContainer {
  id: string;
  name: string;
  /** The container's address on its first network ('' for --network none). */
  ip: string;
  pid: number;
}

export interface DockerEngine {
  dir: string;
  socket: string;
  /** `unix:///.../docker.sock`: pass as --docker-url or DOCKER_HOST. */
  url: string;
  docker: Dockerode;
  bridge: string;
  /** 172.31.N.0/24 of the default bridge. */
  subnet: string;
  /** 172.30.N.0/24: the pool user networks take their subnets from. */
  pool: string;
  pid(): number;
  /** Runs a test container (busybox httpd by default), returns id, name, ip. */
  run(options?: RunOptions): Promise<TestContainer>;
  /**
   * Creates a user-defined bridge network, with a subnet from this engine's pool or `subnet` (which
   * must be inside the pool, `172.30.N.0/24`, so no other engine or the host uses it).
   */
  createNetwork(name: string, options?: { subnet?: string }): Promise<void>;
  /** `docker` CLI against this engine. */
  cli(args: string[]): Promise<string>;
  /** Kills dockerd with SIGKILL (containers stay as the engine left them). */
  kill(): Promise<void>;
  /** Starts dockerd again on the same data root. */
  restart(): Promise<void>;
  /** Removes every container, stops dockerd and what it started, deletes the bridge and the temp dir. */
  stop(): Promise<void>;
}

let nameCounter = 0;

/**
 * Starts a private dockerd for one test file: its own temp dir, socket and bridge (so several engines
 * can run side by side), iptables off. The test image is imported from busybox-static.
 */
export async function startDockerd(
  options: {
    image?: boolean;
    /** Run the engine inside this network namespace (createNetns): its bridge and containers live there. */
    netns?: string;
  } = {},
): Promise<DockerEngine> {
  const dockerdBin = requireBinary('dockerd');
  requireBinary('docker');
  requireBinary('ip');
  const dir = await mkdtemp(join(tmpdir(), 'glue-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const ns = options.netns;
  const { bridge, n } = await createBridge(ns);
  const subnet = `172.31.${n}.0/24`;
  let child: ChildProcess | undefined;
  const args = [
    '--iptables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--bridge',
    bridge,
    '--default-address-pool',
    `base=172.30.${n}.0/24,size=28`,
    '--host',
    `unix://${socket}`,
    '--data-root',
    join(dir, 'root'),
    '--exec-root',
    join(dir, 'exec'),
    '--pidfile',
    join(dir, 'pid'),
  ];
  const docker = new Dockerode({ socketPath: socket });

  const launch = async (): Promise<void> => {
    const log = openSync(join(dir, 'dockerd.log'), 'a');
    child = ns
      ? spawn('nsenter', inNetns(ns, dockerdBin, args), {
          stdio: ['ignore', log, log],
          detached: false,
        })
      : spawn(dockerdBin, args, { stdio: ['ignore', log, log], detached: false });
    closeSync(log);
    const started = child;
    await waitFor(async () => !started.exitCode && (await docker.ping()) !== undefined, {
      timeoutMs: 30_000,
      what: `dockerd on ${socket} (log: ${join(dir, 'dockerd.log')})`,
    }).catch((err: Error) => {
      const tail = safeRead(join(dir, 'dockerd.log')).split('\n').slice(-15).join('\n');
      throw new Error(`${err.message}\n--- dockerd log ---\n${tail}`);
    });
  };

  await launch();
  const engine: DockerEngine = {
    dir,
    socket,
    url: `unix://${socket}`,
    docker,
    bridge,
    subnet,
    pool: `172.30.${n}.0/24`,
    pid: () => child?.pid ?? 0,
    run: (o) => runContainer(docker, o),
    createNetwork: async (name, o = {}) => {
      await docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        ...(o.subnet ? { IPAM: { Config: [{ Subnet: o.subnet }] } } : {}),
      });
    },
    cli: async (cliArgs) => (await execa('docker', ['-H', `unix://${socket}`, ...cliArgs])).stdout,
    kill: async () => {
      const pid = child?.pid;
      if (pid) await stopPid(pid, 'SIGKILL', 5000);
      await waitFor(() => child?.exitCode !== null || child?.signalCode !== null, { what: 'dockerd to die' });
      // Its managed containerd dies with it but may linger as a zombie (no init reaps it here), and a
      // new dockerd would wait for that pid forever: finish it and drop its pid file, as a reboot would.
      const pidFile = join(dir, 'exec', 'containerd', 'containerd.pid');
      const containerdPid = Number(safeRead(pidFile).trim());
      if (containerdPid > 0) await stopPid(containerdPid, 'SIGKILL', 2000);
      rmSync(pidFile, { force: true });
    },
    restart: async () => {
      if (child?.pid && isAlive(child.pid) && child.exitCode === null && child.signalCode === null)
        throw new Error('dockerd is still running');
      await launch();
    },
    stop: async () => {
      try {
        if (child && child.exitCode === null && child.signalCode === null) {
          const all = await docker.listContainers({ all: true }).catch(() => []);
          await Promise.all(
            all.map((c) =>
              docker
                .getContainer(c.Id)
                .remove({ force: true })
                .catch(() => undefined),
            ),
          );
          // dockerd keeps the bridges (br-<id>) of user networks when it stops: remove the networks.
          const nets = await docker.listNetworks().catch(() => []);
          for (const net of nets)
            if (!['bridge', 'host', 'none'].includes(net.Name))
              await docker
                .getNetwork(net.Id)
                .remove()
                .catch(() => undefined);
        }
      } finally {
        if (child?.pid) await stopPid(child.pid, 'SIGTERM', 15_000);
        for (const pid of pidsMentioning(dir)) await stopPid(pid, 'SIGKILL', 2000);
        await unmountUnder(dir);
        await ip(ns, ['link', 'del', bridge], { reject: false });
        // Whatever still holds an address of this engine's pool is one of its user network bridges.
        for (const link of await linksWithAddressIn(`172.30.${n}.`, ns))
          await ip(ns, ['link', 'del', 'dev', link], { reject: false });
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  try {
    if (options.image !== false) await ensureTestImage(engine);
  } catch (err) {
    await engine.stop();
    throw err;
  }
  return engine;
}

/** `ip` in network namespace `ns` (`ip -n NS`), or in this process's own. */
function ip(ns: string | undefined, args: string[], options?: { reject: false }) {
  return execa('ip', [...(ns ? ['-n', ns] : []), ...args], options);
}

/** Interfaces with an IPv4 address starting with `prefix` (`172.30.7.`). */
async function linksWithAddressIn(prefix: string, ns?: string): Promise<string[]> {
  const r = await ip(ns, ['-o', '-4', 'addr', 'show'], { reject: false });
  const links = new Set<string>();
  for (const line of String(r.stdout).split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[3]?.startsWith(prefix) && cols[1]) links.add(cols[1].replace(/@.*$/, ''));
  }
  return [...links];
}

async function createBridge(ns?: string): Promise<{ bridge: string; n: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const n = 1 + Math.floor(Math.random() * 250);
    // An address of either range already on an interface (another engine, or one a crashed run left)
    // would overlap this engine's routes.
    if (
      (await linksWithAddressIn(`172.30.${n}.`, ns)).length > 0 ||
      (await linksWithAddressIn(`172.31.${n}.`, ns)).length > 0
    )
      continue;
    const bridge = `gluebr${n}`;
    const add = await ip(ns, ['link', 'add', bridge, 'type', 'bridge'], { reject: false });
    if (add.exitCode !== 0) continue; // taken by another engine: try another number
    // A Linux bridge without an explicit MAC takes the lowest MAC of its ports, so it would change as
    // containers' veths come and go and stale ARP entries would time out requests (Docker pins docker0
    // the same way). A fixed, locally administered MAC per bridge number.
    const mac = `02:67:6c:75:65:${n.toString(16).padStart(2, '0')}`;
    await ip(ns, ['link', 'set', bridge, 'address', mac]);
    await ip(ns, ['addr', 'add', `172.31.${n}.1/24`, 'dev', bridge]);
    await ip(ns, ['link', 'set', bridge, 'up']);
    return { bridge, n };
  }
  throw new Error('could not create a test bridge (gluebrN): are you root?');
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = safeRead('/proc/self/mountinfo')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await execa('umount', ['-l', m], { reject: false });
}

/** Imports `glue-test/busybox` from the static busybox: `/bin/*` applets, PATH=/bin, a /www for httpd. */
export async function ensureTestImage(engine: Pick<DockerEngine, 'docker' | 'socket'>): Promise<void> {
  const images = await engine.docker.listImages({ filters: { reference: [TEST_IMAGE] } });
  if (images.length > 0) return;
  const busybox = requireBinary('busybox');
  const root = await mkdtemp(join(tmpdir(), 'glue-rootfs-'));
  try {
    for (const d of ['bin', 'www', 'tmp', 'etc', 'proc', 'sys', 'dev', 'var/run'])
      mkdirSync(join(root, d), { recursive: true });
    await execa('cp', [busybox, join(root, 'bin', 'busybox')]);
    const applets = (await execa(busybox, ['--list'])).stdout
      .split('\n')
      .filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
    for (const a of applets) if (!existsSync(join(root, 'bin', a))) symlinkSync('busybox', join(root, 'bin', a));
    writeFileSync(join(root, 'www', 'index.html'), 'glue-test\n');
    writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\n');
    const tar = execa('tar', ['-C', root, '-c', '.']);
    await tar.pipe('docker', ['-H', `unix://${engine.socket}`, 'import', '-c', 'ENV PATH=/bin', '-', TEST_IMAGE]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function runContainer(docker: Dockerode, o: RunOptions = {}): Promise<TestContainer> {
  nameCounter += 1;
  const name = o.name ?? `glue-t${process.pid}-${nameCounter}`;
  const container = await docker.createContainer({
    name,
    Image: TEST_IMAGE,
    Cmd: o.cmd ?? ['sh', '-c', 'mkdir -p /www && echo "$GLUE_PAGE" > /www/index.html && exec httpd -f -p 80 -h /www'],
    Env: [`GLUE_PAGE=${name}`, ...(o.env ?? [])],
    Labels: o.labels ?? {},
    ...(o.healthcheck
      ? {
          Healthcheck: {
            Test: o.healthcheck.test,
            Interval: o.healthcheck.intervalMs * 1_000_000,
            Timeout: 2_000_000_000,
            Retries: o.healthcheck.retries ?? 1,
            StartPeriod: (o.healthcheck.startPeriodMs ?? 0) * 1_000_000,
          },
        }
      : {}),
    ...(o.ip && o.network
      ? { NetworkingConfig: { EndpointsConfig: { [o.network]: { IPAMConfig: { IPv4Address: o.ip } } } } }
      : {}),
    ...(o.publish ? { ExposedPorts: Object.fromEntries(o.publish.map((p) => [`${p.port}/tcp`, {}])) } : {}),
    HostConfig: {
      NetworkMode: o.network ?? 'bridge',
      ...(o.publish
        ? {
            PortBindings: Object.fromEntries(
              o.publish.map((p) => [`${p.port}/tcp`, [{ HostIp: p.hostIp, HostPort: '' }]]),
            ),
          }
        : {}),
      ...(o.restartPolicy ? { RestartPolicy: { Name: o.restartPolicy } } : {}),
      ...(o.capAdd ? { CapAdd: o.capAdd } : {}),
      ...(o.binds ? { Binds: o.binds } : {}),
    },
  });
  await container.start();
  const info = await container.inspect();
  const nets = Object.values(info.NetworkSettings.Networks ?? {});
  return { id: info.Id, name, ip: nets[0]?.IPAddress ?? '', pid: info.State.Pid };
}
