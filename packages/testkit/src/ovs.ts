import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireBinary } from './binaries.js';
import { safeRead } from './files.js';
import { isAlive, pidsMentioning, stopPid } from './processes.js';
import { waitFor } from './wait.js';

/** One port on a bridge as ovs-vsctl reports it. */
export interface OvsPort {
  name: string;
  ofport: number;
  error: string;
  externalIds: Record<string, string>;
  tag: number | undefined;
}

export interface OvsSwitch {
  /** The temp dir with the database, sockets, pid and log files. */
  dir: string;
  /** `unix:/…/db.sock`: give it as `ovs-db` or `--db=`. */
  db: string;
  /** `ovs-vsctl --db=<private> …`; returns stdout, throws on a non-zero exit. */
  vsctl(args: string[]): Promise<string>;
  /** Creates a userspace (`datapath_type=netdev`) bridge; removed again by stop(). */
  addBridge(name: string): Promise<void>;
  /** Ports on a bridge (the bridge's own internal port left out), read with ovs-vsctl. */
  ports(bridge: string): Promise<OvsPort[]>;
  /** A fresh name `<prefix><n>` (≤ 15 chars) unlikely to clash with anything on the host. */
  uniqueName(prefix: string): string;
  /** Removes the bridges made here, stops ovs-vswitchd and ovsdb-server by PID, deletes the dir. Idempotent. */
  stop(): Promise<void>;
}

let counter = 0;

/**
 * Starts a private Open vSwitch: its own ovsdb-server (database and unix socket in a temp dir) and
 * ovs-vswitchd, with OVS_RUNDIR/OVS_LOGDIR pointing there so nothing touches a system OVS. There is no
 * kernel datapath here: bridges are userspace ones (`datapath_type=netdev`).
 */
export async function startOvs(options: { dir?: string } = {}): Promise<OvsSwitch> {
  const tool = requireBinary('ovsdb-tool');
  const server = requireBinary('ovsdb-server');
  const vswitchd = requireBinary('ovs-vswitchd');
  const vsctlBin = requireBinary('ovs-vsctl');
  requireBinary('ip');
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'glue-ovs-')));
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'db.sock');
  const db = `unix:${socket}`;
  const env = {
    ...process.env,
    OVS_RUNDIR: dir,
    OVS_LOGDIR: dir,
    OVS_DBDIR: dir,
    OVS_SYSCONFDIR: dir,
    OVS_PKGDATADIR: '/usr/share/openvswitch',
  };
  const children: ChildProcess[] = [];
  const bridges = new Set<string>();

  const vsctl = async (args: string[]): Promise<string> => {
    const r = await execa(vsctlBin, [`--db=${db}`, '--timeout=10', ...args], { env, reject: false });
    if (r.exitCode !== 0) throw new Error(`ovs-vsctl ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`);
    return r.stdout;
  };

  const launch = async (bin: string, args: string[], log: string, ready: () => Promise<boolean>): Promise<void> => {
    const out = openSync(join(dir, `${log}.out`), 'a');
    const child = spawn(bin, args, { stdio: ['ignore', out, out], env });
    closeSync(out);
    children.push(child);
    await waitFor(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`${log} exited (${child.exitCode ?? child.signalCode})`);
        return ready();
      },
      { timeoutMs: 20_000, intervalMs: 50, what: `${log} in ${dir}` },
    ).catch((err: Error) => {
      const tail = [safeRead(join(dir, `${log}.log`)), safeRead(join(dir, `${log}.out`))]
        .join('\n')
        .split('\n')
        .slice(-15)
        .join('\n');
      throw new Error(`${err.message}\n--- ${log} log ---\n${tail}`);
    });
  };

  let stopped = false;
  const sw: OvsSwitch = {
    dir,
    db,
    vsctl,
    addBridge: async (name) => {
      bridges.add(name);
      await vsctl(['--may-exist', 'add-br', name, '--', 'set', 'Bridge', name, 'datapath_type=netdev']);
      await execa('ip', ['link', 'set', 'dev', name, 'up'], { reject: false });
    },
    ports: async (bridge) => {
      // Three reads, each of a whole table, so a port removed meanwhile cannot make one fail.
      const names = new Set((await vsctl(['list-ports', bridge])).split('\n').filter(Boolean));
      const table = async (t: string, cols: string): Promise<unknown[][]> =>
        (JSON.parse(await vsctl(['--format=json', `--columns=${cols}`, 'list', t])) as { data: unknown[][] }).data;
      const tags = new Map(
        (await table('Port', 'name,tag')).map(([n, tag]) => [String(n), typeof tag === 'number' ? tag : undefined]),
      );
      const ports: OvsPort[] = [];
      for (const [name, ofport, error, ids] of await table('Interface', 'name,ofport,error,external_ids')) {
        if (!names.has(String(name))) continue;
        ports.push({
          name: String(name),
          ofport: typeof ofport === 'number' ? ofport : -1,
          error: typeof error === 'string' ? error : '',
          externalIds: Object.fromEntries(
            ((ids as [string, [string, string][]] | undefined)?.[1] ?? []).map(([k, v]) => [k, v]),
          ),
          tag: tags.get(String(name)),
        });
      }
      return ports.sort((a, b) => a.name.localeCompare(b.name));
    },
    uniqueName: (prefix) => {
      counter += 1;
      const suffix = `${(process.pid % 1000).toString(36)}${counter.toString(36)}${Math.floor(Math.random() * 36 ** 2).toString(36)}`;
      return `${prefix}${suffix}`.slice(0, 15);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        // Ports first (their veths too, when they are ours: only names OVS lists on our bridges).
        for (const br of bridges) {
          const ports = await vsctl(['list-ports', br]).catch(() => '');
          for (const p of ports.split('\n').filter(Boolean)) {
            await vsctl(['--if-exists', 'del-port', br, p]).catch(() => undefined);
            await execa('ip', ['link', 'del', 'dev', p], { reject: false });
          }
          await vsctl(['--if-exists', 'del-br', br]).catch(() => undefined);
        }
      } finally {
        for (const name of ['ovs-vswitchd', 'ovsdb-server']) {
          const pid = Number(safeRead(join(dir, `${name}.pid`)).trim());
          if (pid > 0) await stopPid(pid, 'SIGTERM', 10_000);
        }
        for (const child of children)
          if (child.pid && child.exitCode === null && child.signalCode === null)
            await stopPid(child.pid, 'SIGKILL', 2000);
        for (const pid of pidsMentioning(dir)) if (isAlive(pid)) await stopPid(pid, 'SIGKILL', 2000);
        // A netdev bridge's own port is a tap device: it goes with ovs-vswitchd, but make sure.
        for (const br of bridges) await execa('ip', ['link', 'del', 'dev', br], { reject: false });
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };

  try {
    const conf = join(dir, 'conf.db');
    if (!existsSync(conf)) await execa(tool, ['create', conf, '/usr/share/openvswitch/vswitch.ovsschema'], { env });
    await launch(
      server,
      [
        conf,
        `--remote=punix:${socket}`,
        `--pidfile=${join(dir, 'ovsdb-server.pid')}`,
        `--unixctl=${join(dir, 'ovsdb-server.ctl')}`,
        `--log-file=${join(dir, 'ovsdb-server.log')}`,
      ],
      'ovsdb-server',
      async () =>
        existsSync(socket) &&
        (await execa(vsctlBin, [`--db=${db}`, '--timeout=2', '--no-wait', 'init'], { env, reject: false })).exitCode ===
          0,
    );
    await launch(
      vswitchd,
      [
        db,
        `--pidfile=${join(dir, 'ovs-vswitchd.pid')}`,
        `--unixctl=${join(dir, 'ovs-vswitchd.ctl')}`,
        `--log-file=${join(dir, 'ovs-vswitchd.log')}`,
      ],
      'ovs-vswitchd',
      // cur_cfg catches up with next_cfg once ovs-vswitchd has read the database
      async () =>
        (await execa(vsctlBin, [`--db=${db}`, '--timeout=2', 'show'], { env, reject: false })).exitCode === 0 &&
        existsSync(join(dir, 'ovs-vswitchd.pid')),
    );
  } catch (err) {
    await sw.stop();
    throw err;
  }
  return sw;
}
