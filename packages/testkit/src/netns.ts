import { execa } from 'execa';
import { requireBinary } from './binaries.js';

export interface Netns {
  name: string;
  /** An address of the namespace's own (on its loopback): a listen address for services inside it. */
  address: string;
  /** Runs a program inside the namespace; its stdout. */
  exec(file: string, args: readonly string[], options?: { input?: string; reject?: boolean }): Promise<string>;
  /**
   * `nsenter --net=/run/netns/NAME file args...`: the argv to spawn a long-running process inside it
   * (not `ip netns exec`, whose fresh /sys hides the cgroup mounts dockerd needs).
   */
  argv(file: string, args: readonly string[]): [string, string[]];
  /** Deletes the namespace (its links go with it). */
  delete(): Promise<void>;
}

let counter = 0;

/** `nsenter` arguments that run `file args...` in the named namespace (its mount and /sys stay the caller's). */
export function inNetns(name: string, file: string, args: readonly string[]): string[] {
  return [`--net=/run/netns/${name}`, file, ...args];
}

/**
 * A network namespace of the test's own, with loopback up, IPv4 forwarding on (only there) and a
 * second loopback address, `10.77.<n>.1/32` (this kernel has no dummy links): engines, Glue and clients inside it never touch the host's
 * rules, routes or links.
 */
export async function createNetns(prefix = 'gluens'): Promise<Netns> {
  requireBinary('ip');
  requireBinary('nsenter');
  counter += 1;
  const name = `${prefix}${process.pid % 100000}x${counter}`;
  const address = `10.77.${counter % 250}.1`;
  await execa('ip', ['netns', 'add', name]);
  const ns: Netns = {
    name,
    address,
    exec: async (file, args, options = {}) =>
      (
        await execa('nsenter', inNetns(name, file, args), {
          ...(options.input === undefined ? {} : { input: options.input }),
          reject: options.reject ?? true,
        })
      ).stdout,
    argv: (file, args) => ['nsenter', inNetns(name, file, args)],
    delete: async () => {
      await execa('ip', ['netns', 'delete', name], { reject: false });
    },
  };
  try {
    await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    await execa('ip', ['-n', name, 'addr', 'add', `${address}/32`, 'dev', 'lo']);
    await ns.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  } catch (err) {
    await ns.delete();
    throw err;
  }
  return ns;
}
