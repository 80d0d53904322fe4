import type { CommandResult, CommandRunner } from '@glue/core';

interface FakeInterface {
  bridge: string;
  /** Reads left that see no ofport yet (ovs-vswitchd catching up); Infinity: never assigned. */
  ofportLag?: number;
  externalIds: Record<string, string>;
  tag?: number;
  error: string;
}

/**
 * A model of the host for unit tests: OVS bridges and ports, host links and links inside container
 * namespaces. It answers the commands the handler runs and records each argv.
 */
export class FakeHost {
  readonly calls: string[][] = [];
  readonly bridges = new Map<string, string>();
  readonly interfaces = new Map<string, FakeInterface>();
  readonly links = new Set<string>();
  /** Host end of each veth → its peer's current name and namespace (undefined: the host's). */
  readonly veths = new Map<string, { peer: string; pid: number | undefined }>();
  /** Links inside each container namespace (by PID). */
  readonly nsLinks = new Map<number, Set<string>>();
  /** PIDs whose namespace we may enter. */
  readonly pids = new Set<number>();
  /** Set to make add-port succeed (exit 0) but leave this error on the interface. */
  addPortError = '';
  /** Reads of a port just added that see an empty ofport (Infinity: it never gets one). */
  ofportLag = 0;
  /** Ports whose del-port exits 0 but leaves them in the database. */
  readonly delPortIgnored = new Set<string>();
  /** ethtool calls seen: `iface tx off` per pid. */
  readonly ethtool: string[] = [];
  /** PIDs that live in the host's network namespace (a `--network host` container). */
  readonly hostNetnsPids = new Set<number>();
  /** Like readlink /proc/PID/ns/net: the host's namespace for 'self' and hostNetnsPids, one per other PID. */
  readonly netnsOf = async (pid: number | 'self'): Promise<string | undefined> => {
    if (pid === 'self' || this.hostNetnsPids.has(pid)) return 'net:[4026531840]';
    return this.pids.has(pid) ? `net:[${pid}]` : undefined;
  };
  /** Make a command fail: predicate on argv. */
  failWhen: ((argv: string[]) => string | undefined) | undefined;

  /** Lines fed to `ip -batch -`, each recorded as an argv `['ip', ...words]` (prefixed with nsenter's when inside). */
  readonly runner: CommandRunner = async (file, argsIn, options) => {
    if (options?.signal?.aborted) return { exitCode: -1, stdout: '', stderr: 'cancelled' }; // as execa's cancelSignal
    const args = [...argsIn];
    const batchAt = args.indexOf('-batch');
    if (batchAt >= 0 && args[batchAt + 1] === '-') {
      // Like `ip -batch -`: stop at the first failing line and report it.
      const prefix = [file, ...args.slice(0, batchAt)];
      for (const [n, line] of (options?.input ?? '').split('\n').filter(Boolean).entries()) {
        const r = await this.runner(prefix[0]!, [...prefix.slice(1), ...line.split(' ')]);
        if (r.exitCode !== 0) return { exitCode: 1, stdout: '', stderr: `${r.stderr}\nCommand failed -:${n + 1}` };
      }
      return ok();
    }
    const argv = [file, ...args];
    this.calls.push(argv);
    const failure = this.failWhen?.(argv);
    if (failure) return { exitCode: 1, stdout: '', stderr: failure };
    if (file === 'ovs-vsctl') {
      // Several commands separated by `--`: run each, print one table per find.
      const out: string[] = [];
      const cmds = splitCommands(
        args.filter((a) => !a.startsWith('--db=') && !a.startsWith('--timeout=') && a !== '--format=json'),
      );
      for (const [i, cmd] of cmds.entries()) {
        const r = this.vsctl(cmd, cmds.slice(i + 1));
        if (r.exitCode !== 0) return r;
        if (r.stdout) out.push(r.stdout);
        if (r.stderr) return { exitCode: 0, stdout: out.join('\n'), stderr: r.stderr };
      }
      return ok(out.join('\n'));
    }
    if (file === 'ip') return this.ip(args, this.links, undefined);
    if (file === 'nsenter') {
      const pid = Number(args[1]);
      if (args[0] !== '-t' || args[2] !== '-n' || args[3] !== '--' || !this.pids.has(pid))
        return fail(`nsenter: bad call or no such process ${args[1]}`);
      const inner = args.slice(4);
      const links = this.nsLinks.get(pid) ?? new Set<string>();
      this.nsLinks.set(pid, links);
      if (inner[0] === 'ip') return this.ip(inner.slice(1), links, pid);
      if (inner[0] === 'ethtool') {
        if (!links.has(inner[2] ?? '')) return fail(`Cannot get device settings: No such device`);
        this.ethtool.push(`${pid} ${inner.slice(1).join(' ')}`);
        return ok();
      }
      return fail(`nsenter: ${inner[0]}: not found`);
    }
    return fail(`${file}: not found`);
  };

  addBridge(name: string, datapath = 'netdev'): void {
    this.bridges.set(name, datapath);
  }

  /** A port as a crash would leave it: in OVS, maybe without a link. */
  addStalePort(name: string, bridge: string, externalIds: Record<string, string>, withLink = false): void {
    this.interfaces.set(name, {
      bridge,
      externalIds,
      error: withLink ? '' : 'could not open network device (No such device)',
    });
    if (withLink) this.links.add(name);
  }

  /** The container's process ends: its namespace and the veth peers go, as the kernel does. */
  killContainer(pid: number, peers: string[]): void {
    this.pids.delete(pid);
    this.nsLinks.delete(pid);
    for (const p of peers) this.links.delete(p);
    for (const p of peers) {
      const i = this.interfaces.get(p);
      if (i) i.error = 'could not open network device (No such device)';
    }
  }

  portsOn(bridge: string): string[] {
    return [...this.interfaces]
      .filter(([, i]) => i.bridge === bridge)
      .map(([n]) => n)
      .sort();
  }

  private vsctl(args: string[], following: string[][]): CommandResult {
    const opts = args.filter((a) => a.startsWith('--'));
    const rest = args.filter((a) => !opts.includes(a));
    const [cmd, ...cargs] = rest;
    if (cmd === 'set') return ok(); // applied by add-port below
    const cols = (opts.find((o) => o.startsWith('--columns='))?.slice('--columns='.length) ?? 'name').split(',');
    if (cmd === 'find' && cargs[0] === 'Bridge') {
      const name = unquote((cargs[1] ?? '').replace(/^name=/, ''));
      const dp = this.bridges.get(name);
      return ok(table(cols, dp === undefined ? [] : [{ name, datapath_type: dp }]));
    }
    if (cmd === 'find' && cargs[0] === 'Interface') {
      const conds = cargs.slice(1).map((c) => {
        const m = /^(name|external_ids:([\w-]+))=(.*)$/.exec(c);
        if (!m) throw new Error(`fake ovs-vsctl: condition ${c}`);
        return { key: m[2], value: unquote(m[3]!) };
      });
      const rows = [...this.interfaces]
        .filter(([n, i]) =>
          conds.every((c) => (c.key === undefined ? n === c.value : i.externalIds[c.key] === c.value)),
        )
        .map(([n, i]) => {
          const lagging = !i.error && (i.ofportLag ?? 0) > 0;
          if (lagging) i.ofportLag = i.ofportLag! - 1;
          return {
            name: n,
            ofport: i.error ? -1 : lagging ? ['set', []] : 1,
            error: i.error ? i.error : ['set', []],
            external_ids: ['map', Object.entries(i.externalIds)],
          };
        });
      return ok(table(cols, rows));
    }
    if (cmd === 'del-port') {
      const name = cargs[0]!;
      if (!this.interfaces.has(name) && !opts.includes('--if-exists')) return fail(`ovs-vsctl: no port named ${name}`);
      if (!this.delPortIgnored.has(name)) this.interfaces.delete(name);
      return ok();
    }
    if (cmd === 'add-port') {
      const [bridge, name] = cargs;
      if (!this.bridges.has(bridge!)) return fail(`ovs-vsctl: no bridge named ${bridge}`);
      const iface: FakeInterface = this.interfaces.get(name!) ?? { bridge: bridge!, externalIds: {}, error: '' };
      iface.error =
        this.addPortError || (this.links.has(name!) ? '' : 'could not open network device (No such device)');
      iface.ofportLag = this.ofportLag;
      // `-- set Interface NAME k=v...` and `-- set Port NAME tag=N` that follow in the same call
      for (const g of following) {
        if (g[0] !== 'set') continue;
        for (const kv of g.slice(3)) {
          const m = /^external_ids:([\w-]+)=(.*)$/.exec(kv);
          if (m) iface.externalIds[m[1]!] = unquote(m[2]!);
          const t = /^tag=(\d+)$/.exec(kv);
          if (t) iface.tag = Number(t[1]);
        }
      }
      this.interfaces.set(name!, iface);
      return iface.error && this.addPortError
        ? { exitCode: 0, stdout: '', stderr: `ovs-vsctl: Error detected while setting up '${name}': ${iface.error}.` }
        : ok();
    }
    return fail(`fake ovs-vsctl: unsupported ${args.join(' ')}`);
  }

  private ip(args: string[], links: Set<string>, pid: number | undefined): CommandResult {
    const a = args.join(' ');
    let m: RegExpExecArray | null;
    if (a === '-o link show')
      return ok([...links].map((l, i) => `${i + 1}: ${l}: <BROADCAST,MULTICAST,UP> mtu 1500`).join('\n'));
    if ((m = /^link add (\S+) type veth peer name (\S+)$/.exec(a))) {
      if (links.has(m[1]!) || links.has(m[2]!)) return fail('RTNETLINK answers: File exists');
      links.add(m[1]!);
      links.add(m[2]!);
      this.veths.set(m[1]!, { peer: m[2]!, pid: undefined });
      return ok();
    }
    if ((m = /^link set dev (\S+) netns (\d+)$/.exec(a))) {
      if (!links.has(m[1]!)) return fail(`Cannot find device "${m[1]}"`);
      const target = Number(m[2]);
      if (!this.pids.has(target)) return fail(`Invalid "netns" value`);
      links.delete(m[1]!);
      for (const v of this.veths.values()) if (v.peer === m[1] && v.pid === pid) v.pid = target;
      const ns = this.nsLinks.get(target) ?? new Set<string>();
      ns.add(m[1]!);
      this.nsLinks.set(target, ns);
      return ok();
    }
    if ((m = /^link set dev (\S+) name (\S+)$/.exec(a))) {
      if (!links.has(m[1]!)) return fail(`Cannot find device "${m[1]}"`);
      if (links.has(m[2]!)) return fail('RTNETLINK answers: File exists');
      links.delete(m[1]!);
      links.add(m[2]!);
      for (const v of this.veths.values()) if (v.peer === m[1] && v.pid === pid) v.peer = m[2]!;
      return ok();
    }
    if ((m = /^(?:-o )?link (?:set|show) dev (\S+)/.exec(a)))
      return links.has(m[1]!) ? ok() : fail(`Device "${m[1]}" does not exist.`);
    if ((m = /^link del dev (\S+)$/.exec(a))) {
      if (!links.delete(m[1]!)) return fail('Cannot find device "' + m[1] + '"');
      // A veth goes as a pair, wherever its other end lives.
      const v = this.veths.get(m[1]!);
      if (v) (v.pid === undefined ? this.links : this.nsLinks.get(v.pid))?.delete(v.peer);
      this.veths.delete(m[1]!);
      return ok();
    }
    if ((m = /^addr add (\S+) dev (\S+)$/.exec(a)) || (m = /^route replace default via (\S+) dev (\S+)$/.exec(a))) {
      return links.has(m[2]!) ? ok() : fail(`Cannot find device "${m[2]}"`);
    }
    return fail(`fake ip${pid ? ` (ns ${pid})` : ''}: unsupported ${a}`);
  }
}

function ok(stdout = ''): CommandResult {
  return { exitCode: 0, stdout, stderr: '' };
}

function fail(stderr: string): CommandResult {
  return { exitCode: 1, stdout: '', stderr };
}

function unquote(v: string): string {
  return v.startsWith('"') ? (JSON.parse(v) as string) : v;
}

function table(cols: string[], rows: Record<string, unknown>[]): string {
  return JSON.stringify({ headings: cols, data: rows.map((r) => cols.map((c) => r[c] ?? ['set', []])) });
}

function splitCommands(args: string[]): string[][] {
  const groups: string[][] = [];
  let cur: string[] = [];
  for (const a of args) {
    if (a === '--') {
      if (cur.length) groups.push(cur);
      cur = [];
    } else cur.push(a);
  }
  if (cur.length) groups.push(cur);
  return groups;
}
