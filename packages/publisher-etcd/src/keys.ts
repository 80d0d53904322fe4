/**
 * The key layout in etcd. Everything lives under one prefix (default `/glue`):
 *
 *   <prefix>/hosts/<host>/owner                         which agent publishes <host> (JSON OwnerRecord)
 *   <prefix>/hosts/<host>/containers/<id>               one running container (JSON ContainerRecord)
 *   <prefix>/http/<vhost>/<host>/<id>/<port>            index: container <id> on <host> serves HTTP host <vhost>
 *                                                       on its port <port> (JSON HttpEntry)
 *
 * `<host>` and `<vhost>` are written with encodeURIComponent, so a `/` in a host id can never reach
 * another host's keys. Every key of one agent hangs on that agent's lease.
 */

export const DEFAULT_PREFIX = '/glue';

/** Normalises a prefix: leading `/`, no trailing `/`. Throws on an empty or malformed one. */
export function normalizePrefix(raw: string): string {
  const trimmed = raw.trim();
  if (trimmed === '' || trimmed === '/') throw new Error('must not be empty or "/" (the publisher owns keys under it)');
  if (/[\s\0]/.test(trimmed)) throw new Error(`${JSON.stringify(raw)} contains whitespace or NUL`);
  const withSlash = trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
  const clean = withSlash.replace(/\/+$/, '');
  if (
    clean
      .split('/')
      .slice(1)
      .some((s) => s === '' || s === '.' || s === '..')
  ) {
    throw new Error(`${JSON.stringify(raw)} has an empty, "." or ".." segment`);
  }
  return clean;
}

function seg(value: string): string {
  if (value === '') throw new Error('empty key segment');
  return encodeURIComponent(value);
}

export function hostsPrefix(prefix: string): string {
  return `${prefix}/hosts/`;
}

/** Every key of one host lives under here, except its index entries. */
export function hostPrefix(prefix: string, host: string): string {
  return `${prefix}/hosts/${seg(host)}/`;
}

export function ownerKey(prefix: string, host: string): string {
  return `${hostPrefix(prefix, host)}owner`;
}

export function containersPrefix(prefix: string, host: string): string {
  return `${hostPrefix(prefix, host)}containers/`;
}

export function containerKey(prefix: string, host: string, id: string): string {
  return `${containersPrefix(prefix, host)}${seg(id)}`;
}

/** The whole HTTP index, or the entries of one virtual host when `vhost` is given. */
export function httpPrefix(prefix: string, vhost?: string): string {
  return vhost === undefined ? `${prefix}/http/` : `${prefix}/http/${seg(vhost.toLowerCase())}/`;
}

export function httpKey(prefix: string, vhost: string, host: string, id: string, port: number): string {
  return `${httpPrefix(prefix, vhost)}${seg(host)}/${seg(id)}/${port}`;
}

export type ParsedKey =
  | { kind: 'owner'; host: string }
  | { kind: 'container'; host: string; id: string }
  | { kind: 'http'; vhost: string; host: string; id: string; port: number };

/** Reads a key of the layout back; undefined for anything else under (or outside) the prefix. */
export function parseKey(prefix: string, key: string): ParsedKey | undefined {
  if (!key.startsWith(`${prefix}/`)) return undefined;
  const parts = key.slice(prefix.length + 1).split('/');
  const dec = (s: string | undefined): string | undefined => {
    if (s === undefined || s === '') return undefined;
    try {
      return decodeURIComponent(s);
    } catch {
      return undefined;
    }
  };
  if (parts[0] === 'hosts') {
    const host = dec(parts[1]);
    if (host === undefined) return undefined;
    if (parts.length === 3 && parts[2] === 'owner') return { kind: 'owner', host };
    const id = dec(parts[3]);
    if (parts.length === 4 && parts[2] === 'containers' && id !== undefined) return { kind: 'container', host, id };
    return undefined;
  }
  if (parts[0] === 'http' && parts.length === 5) {
    const [, v, h, i, p] = parts;
    const vhost = dec(v);
    const host = dec(h);
    const id = dec(i);
    const port = Number(p);
    if (
      vhost === undefined ||
      host === undefined ||
      id === undefined ||
      !/^\d{1,5}$/.test(p ?? '') ||
      port < 1 ||
      port > 65535
    )
      return undefined;
    return { kind: 'http', vhost, host, id, port };
  }
  return undefined;
}

/** The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string | Buffer): Buffer {
  const buf = typeof prefix === 'string' ? Buffer.from(prefix) : prefix;
  for (let i = buf.length - 1; i >= 0; i -= 1) {
    if (buf[i]! < 0xff) {
      const end = Buffer.from(buf.subarray(0, i + 1));
      end[i] = buf[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}
