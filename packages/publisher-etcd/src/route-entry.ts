/**
 * An index entry read back from etcd is untrusted input: anyone with write access to the prefix can
 * put anything there. Before a balancer routes by it, the entry is parsed with the schema, its key
 * must say what its value says, and every field goes through the same grammar the labels went
 * through on the publishing host (@glue/core's), so a value cannot carry a directive, a space or a
 * newline into a config file.
 */
import { isIP } from 'node:net';
import { parseHostname, parsePrefix, quote } from '@glue/core';
import { parseKey } from './keys.js';
import { HOST_ID } from './params.js';
import { type HttpEntry, httpEntrySchema } from './schema.js';

/** Docker's container-name grammar (what a HAProxy server name is built from). */
const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** Docker container ids: 64 hex digits (12 and up accepted, for hand-written tests). */
const CONTAINER_ID = /^[0-9a-f]{12,64}$/;

export type EntryCheck = { ok: true; entry: HttpEntry } | { ok: false; reason: string };

/** Validates the value of one `<prefix>/http/...` key; `reason` says what was wrong, for a log line naming the key. */
export function checkHttpEntry(prefix: string, key: string, value: string): EntryCheck {
  const bad = (reason: string): EntryCheck => ({ ok: false, reason });
  const parsedKey = parseKey(prefix, key);
  if (parsedKey?.kind !== 'http') return bad('is not an index key (<prefix>/http/<vhost>/<host>/<id>/<port>)');
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return bad('is not JSON');
  }
  const parsed = httpEntrySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return bad(
      `does not match the index entry schema (${issue ? `${issue.path.join('.') || 'value'}: ${issue.message}` : 'invalid'})`,
    );
  }
  const e = parsed.data;
  const vhost = parseHostname(e.vhost);
  if (!vhost.ok) return bad(`vhost ${quote(e.vhost)} ${vhost.reason}`);
  if (vhost.value !== e.vhost) return bad(`vhost ${quote(e.vhost)} is not lower-case`);
  // The record keeps the prefix without its leading '/'.
  const prefixCheck = parsePrefix(e.prefix);
  if (e.prefix.startsWith('/') || !prefixCheck.ok || prefixCheck.value !== (e.prefix === '' ? '' : `/${e.prefix}`))
    return bad(`prefix ${quote(e.prefix)} ${prefixCheck.ok ? 'is not in its normal form (a/b)' : prefixCheck.reason}`);
  if (!HOST_ID.test(e.host)) return bad(`host ${quote(e.host)} is not a host id`);
  if (!CONTAINER_ID.test(e.id)) return bad(`id ${quote(e.id)} is not a container id`);
  if (!CONTAINER_NAME.test(e.name)) return bad(`name ${quote(e.name)} is not a container name`);
  if (isIP(e.endpoint.address) === 0) return bad(`endpoint address ${quote(e.endpoint.address)} is not an IP address`);
  if (e.stripPrefix && e.prefix === '') return bad('stripPrefix is set without a prefix');
  if (parsedKey.vhost !== e.vhost || parsedKey.host !== e.host || parsedKey.id !== e.id || parsedKey.port !== e.port)
    return bad(
      `says ${e.vhost} ${e.host}/${e.id.slice(0, 12)}:${e.port} but its key says ${parsedKey.vhost} ${parsedKey.host}/${parsedKey.id.slice(0, 12)}:${parsedKey.port}`,
    );
  return { ok: true, entry: e };
}
