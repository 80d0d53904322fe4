/**
 * Validators for everything that reaches `ip`, `ethtool` and `ovs-vsctl` from labels or params.
 * Each returns an error reason (a short sentence) or undefined when the value is fine.
 */

/** Linux interface names: 1–15 bytes, no '/', ':', whitespace, not '.' or '..'. Stricter here: [A-Za-z0-9_.-]. */
export function checkInterfaceName(value: string): string | undefined {
  if (value.length === 0) return 'an interface name cannot be empty';
  if (value.length > 15) return `an interface name has at most 15 characters (this one has ${value.length})`;
  if (value === '.' || value === '..') return 'not a valid interface name';
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(value))
    return 'an interface name may only hold letters, digits, "_", "." and "-" (and not start with "." or "-")';
  return undefined;
}

/** OVS bridge names follow interface rules (the bridge's own port is a Linux device). */
export const checkBridgeName = checkInterfaceName;

export function parseIPv4(value: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(value);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p, i) => p > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith('0')))) return undefined;
  return parts;
}

export function checkIPv4(value: string): string | undefined {
  return parseIPv4(value) ? undefined : 'not an IPv4 address (like 10.0.0.5)';
}

/** An address with its prefix, as `ip addr add` takes it: 10.0.0.5/24. */
export function checkCidr(value: string): string | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(value);
  if (!m) return 'not an address with a prefix length (like 10.0.0.5/24)';
  const ip = parseIPv4(m[1]!);
  if (!ip) return `${JSON.stringify(m[1])} is not an IPv4 address`;
  const prefix = Number(m[2]);
  if (prefix < 1 || prefix > 32) return `prefix length ${prefix} is not between 1 and 32`;
  const host = ((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) >>> 0;
  const mask = prefix === 32 ? 0xffffffff : ~((1 << (32 - prefix)) - 1) >>> 0;
  const hostPart = (host & ~mask) >>> 0;
  if (prefix < 31 && (hostPart === 0 || hostPart === ~mask >>> 0)) {
    return `${m[1]} is the network or broadcast address of /${prefix}`;
  }
  return undefined;
}

/** A unicast MAC: six hex pairs separated by ':'. */
export function checkMac(value: string): string | undefined {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(value)) return 'not a MAC address (like 02:42:ac:11:00:02)';
  if (parseInt(value.slice(0, 2), 16) & 1) return 'a multicast MAC cannot be an interface address (first byte is odd)';
  if (/^(00:){5}00$/.test(value)) return 'the all-zero MAC is not an interface address';
  return undefined;
}

export function checkMtu(value: string): string | undefined {
  if (!/^\d{1,5}$/.test(value)) return 'not a number (an MTU is 68–65535)';
  const n = Number(value);
  if (n < 68 || n > 65535) return `MTU ${n} is not between 68 and 65535`;
  return undefined;
}

export function checkVlan(value: string): string | undefined {
  if (!/^\d{1,4}$/.test(value)) return 'not a VLAN tag (a number 0–4094)';
  const n = Number(value);
  if (n > 4094) return `VLAN tag ${n} is not between 0 and 4094`;
  return undefined;
}

/** Where ovs-vsctl finds the database: unix:PATH, tcp:IP:PORT or ssl:IP:PORT. */
export function checkOvsDb(value: string): string | undefined {
  if (/^unix:\/[^\s\0]*$/.test(value)) return undefined;
  if (/^(tcp|ssl):(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d{1,5}$/.test(value)) return undefined;
  return 'not an OVSDB address (unix:/path/db.sock, tcp:IP:PORT or ssl:IP:PORT)';
}

/** Datapath types an OVS bridge can have. */
export const DATAPATH_TYPES = ['system', 'netdev'] as const;
export type DatapathType = (typeof DATAPATH_TYPES)[number];
