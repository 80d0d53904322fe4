import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Debian packages that provide the binaries tests need. */
export const APT_PACKAGES: Record<string, string> = {
  dockerd: 'docker.io',
  docker: 'docker.io',
  containerd: 'containerd',
  busybox: 'busybox-static',
  haproxy: 'haproxy',
  etcd: 'etcd-server',
  etcdctl: 'etcd-client',
  'ovs-vsctl': 'openvswitch-switch',
  'ovsdb-server': 'openvswitch-switch',
  'ovs-vswitchd': 'openvswitch-switch',
  'ovsdb-tool': 'openvswitch-switch',
  ethtool: 'ethtool',
  nft: 'nftables',
  conntrack: 'conntrack',
  socat: 'socat',
  ip: 'iproute2',
  crudini: 'crudini',
  'ovs-docker': 'openvswitch-common',
  uuidgen: 'uuid-runtime',
  nsenter: 'util-linux',
  openssl: 'openssl',
  'systemd-analyze': 'systemd',
  prometheus: 'prometheus',
  pebble: 'pebble',
  'pebble-challtestsrv': 'pebble',
};

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * Finds a binary or throws an error that says how to install it. Tests that need a component call
 * this first: a missing component fails the test loudly, never skips it.
 */
export function requireBinary(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SEARCH];
  for (const dir of dirs) {
    const full = join(dir, name);
    try {
      accessSync(full, constants.X_OK);
      return full;
    } catch {
      // keep looking
    }
  }
  const pkg = APT_PACKAGES[name] ?? name;
  throw new Error(
    `required binary \`${name}\` not found: install it with \`apt-get install -y ${pkg}\` (or run \`bash scripts/setup.sh\`)`,
  );
}
