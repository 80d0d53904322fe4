/**
 * A certificate bundle as HAProxy loads it (leaf certificate, its chain, the private key, all PEM in
 * one file), read and checked before anything is applied: PEM blocks only, a key that matches the
 * leaf, inside its validity, names from the SAN (the CN only without one). Pure apart from the clock.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { parseHostname } from '@glue/core';

export interface CertBundle {
  /** Leaf, then chain, then key: the text HAProxy is given (file and runtime API alike). */
  pem: string;
  /** DNS names the leaf is valid for, lower-case; `*.example.com` for a wildcard. */
  names: string[];
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 fingerprint of the leaf (`AB:CD:…`), to tell two versions apart. */
  fingerprint: string;
}

export type BundleResult = { ok: true; bundle: CertBundle } | { ok: false; reason: string };

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;
const KEY_KINDS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);
const MAX_BYTES = 1024 * 1024;

/**
 * Checks a certificate and key (one text with both, or the key given apart) and returns what HAProxy
 * is given. Refused with the reason: not PEM, no certificate, no key, two keys, a key that does not
 * match, expired, not yet valid, no DNS name.
 */
export function readBundle(text: string, keyText = '', now = new Date()): BundleResult {
  if (text.length + keyText.length > MAX_BYTES) return { ok: false, reason: 'is larger than 1 MiB' };
  const certs: string[] = [];
  const keys: string[] = [];
  for (const source of [text, keyText]) {
    // Everything outside PEM blocks may only be blank or comment-like text lines, never another block kind.
    for (const m of source.matchAll(BLOCK)) {
      const block = `-----BEGIN ${m[1]}-----\n${(m[2] ?? '').replace(/\r/g, '')}-----END ${m[1]}-----\n`;
      if (m[1] === 'CERTIFICATE') certs.push(block);
      else if (KEY_KINDS.has(m[1] ?? '')) keys.push(block);
      else if (m[1] !== 'EC PARAMETERS') return { ok: false, reason: `holds a PEM block HAProxy cannot use (${m[1]})` };
    }
  }
  if (certs.length === 0) return { ok: false, reason: 'is not a PEM certificate (no BEGIN CERTIFICATE block)' };
  if (keys.length === 0)
    return { ok: false, reason: 'has no private key (put it in the same file, or in <name>.key beside it)' };
  if (keys.length > 1) return { ok: false, reason: 'has more than one private key' };
  let leaf: X509Certificate;
  let key: KeyObject;
  try {
    leaf = new X509Certificate(certs[0]!);
  } catch (err) {
    return { ok: false, reason: `its first certificate cannot be read: ${(err as Error).message}` };
  }
  for (const [i, c] of certs.slice(1).entries()) {
    try {
      new X509Certificate(c);
    } catch (err) {
      return { ok: false, reason: `chain certificate ${i + 2} cannot be read: ${(err as Error).message}` };
    }
  }
  try {
    key = createPrivateKey(keys[0]!);
  } catch (err) {
    return { ok: false, reason: `its private key cannot be read: ${(err as Error).message}` };
  }
  if (!leaf.checkPrivateKey(key)) return { ok: false, reason: 'its private key does not match the certificate' };
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (now < notBefore) return { ok: false, reason: `is not valid yet (from ${notBefore.toISOString()})` };
  if (now >= notAfter) return { ok: false, reason: `expired on ${notAfter.toISOString()}` };
  const names = certNames(leaf);
  if (names.length === 0) return { ok: false, reason: 'names no DNS host (no subjectAltName DNS entry or CN)' };
  return {
    ok: true,
    bundle: { pem: [...certs, keys[0]!].join(''), names, notBefore, notAfter, fingerprint: leaf.fingerprint256 },
  };
}

/** DNS names of a leaf: its SAN DNS entries, or (without a SAN) a hostname CN. Only names that pass the hostname grammar. */
export function certNames(leaf: X509Certificate): string[] {
  const out: string[] = [];
  const add = (name: string): void => {
    const wildcard = name.startsWith('*.');
    const h = parseHostname(wildcard ? name.slice(2) : name);
    if (h.ok && !out.includes(wildcard ? `*.${h.value}` : h.value)) out.push(wildcard ? `*.${h.value}` : h.value);
  };
  const san = leaf.subjectAltName;
  if (san) {
    for (const part of san.split(/,\s*/)) if (part.startsWith('DNS:')) add(part.slice(4));
  } else {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject)?.[1];
    if (cn) add(cn);
  }
  return out;
}

/** Whether `names` (a certificate's) covers `host`: exactly, or by a wildcard one label deep. */
export function covers(names: readonly string[], host: string): boolean {
  if (names.includes(host)) return true;
  const dot = host.indexOf('.');
  return dot > 0 && names.includes(`*${host.slice(dot)}`);
}
