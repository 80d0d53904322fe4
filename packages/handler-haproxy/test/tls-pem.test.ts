import { describe, expect, it } from 'vitest';
import { acmeId, allowedByAcme, renewAt } from '../src/tls/acme.js';
import { fileId } from '../src/tls/certs-dir.js';
import { covers, readBundle } from '../src/tls/pem.js';
import { selfSignedPem } from '../src/tls/self-signed.js';
import { testCa } from './tls-certs.js';

const DAY = 86_400_000;

describe('readBundle', async () => {
  const ca = await testCa();
  const good = await ca.issue({ names: ['a.example.com', '*.b.example.com'] });
  const other = await ca.issue({ names: ['c.example.com'] });

  it('reads a leaf and its key, in one file or apart, with the names of its SAN', () => {
    for (const r of [
      readBundle(good.cert + good.key),
      readBundle(good.cert, good.key),
      readBundle(good.key + good.cert),
    ]) {
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      expect(r.bundle.names).toEqual(['a.example.com', '*.b.example.com']);
      // HAProxy gets the certificate first, then the key.
      expect(r.bundle.pem.indexOf('CERTIFICATE')).toBeLessThan(r.bundle.pem.indexOf('PRIVATE KEY'));
      expect(r.bundle.fingerprint).toMatch(/^[0-9A-F:]+$/);
    }
  });

  it('keeps the chain after the leaf', () => {
    const r = readBundle(good.cert + ca.pem + good.key);
    expect(r.ok && r.bundle.pem.split('BEGIN CERTIFICATE').length - 1).toBe(2);
  });

  it('refuses what HAProxy must never be given, saying why', async () => {
    const expired = await ca.issue({
      names: ['x.example.com'],
      notBefore: new Date(Date.now() - 3 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const future = await ca.issue({ names: ['x.example.com'], notBefore: new Date(Date.now() + DAY) });
    const noName = await ca.issue({ names: [], cn: 'not a hostname!' });
    const cases: Array<[string, string, RegExp]> = [
      ['hello', '', /not a PEM certificate/],
      [good.cert, '', /no private key/],
      [good.cert, other.key, /does not match/],
      [good.cert + good.key + other.key, '', /more than one private key/],
      [expired.cert + expired.key, '', /expired on/],
      [future.cert + future.key, '', /not valid yet/],
      [noName.cert + noName.key, '', /names no DNS host/],
      [good.cert.replace(/[A-Za-z]{8}\n/, 'AAAAAAAA\n') + good.key, '', /cannot be read/],
      [
        good.cert + '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n' + good.key,
        '',
        /cannot use \(X509 CRL\)/,
      ],
    ];
    for (const [text, key, reason] of cases) {
      const r = readBundle(text, key);
      expect(r.ok ? 'accepted' : r.reason).toMatch(reason);
    }
  });

  it('a generated default certificate passes its own checks', async () => {
    const r = readBundle(await selfSignedPem());
    expect(r.ok && r.bundle.names).toEqual(['glue-default-certificate.invalid']);
  });
});

describe('covers', () => {
  it('matches exact names and one-label wildcards', () => {
    expect(covers(['a.example.com'], 'a.example.com')).toBe(true);
    expect(covers(['*.example.com'], 'a.example.com')).toBe(true);
    expect(covers(['*.example.com'], 'x.a.example.com')).toBe(false);
    expect(covers(['*.example.com'], 'example.com')).toBe(false);
  });
});

describe('ACME rules', () => {
  it('the allow-list: exact names, and names under a .suffix (never the suffix itself, never a look-alike)', () => {
    const domains = ['.example.com', 'shop.example.net'];
    expect(allowedByAcme(domains, 'a.example.com')).toBe(true);
    expect(allowedByAcme(domains, 'x.y.example.com')).toBe(true);
    expect(allowedByAcme(domains, 'example.com')).toBe(false);
    expect(allowedByAcme(domains, 'evilexample.com')).toBe(false);
    expect(allowedByAcme(domains, 'shop.example.net')).toBe(true);
    expect(allowedByAcme(domains, 'x.shop.example.net')).toBe(false);
  });
  it('renews once a third of the lifetime is left', () => {
    const notBefore = new Date('2026-01-01T00:00:00Z');
    const notAfter = new Date('2026-04-01T00:00:00Z'); // 90 days
    expect(new Date(renewAt({ notBefore, notAfter })).toISOString()).toBe('2026-03-02T00:00:00.000Z');
  });
  it('a long host gets a short id (a file name under 255 bytes) that is still its own', () => {
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.example.com`;
    expect(acmeId('shop.example.com')).toBe('acme-shop.example.com');
    expect(acmeId(long).length).toBeLessThan(100);
    expect(acmeId(long)).toMatch(/^acme-[a-z0-9.-]+$/);
    expect(acmeId(long)).not.toBe(acmeId(long.replace('example', 'exampl3')));
  });
  it('certs-dir file names become crt-list-safe ids', () => {
    expect(fileId('Shop.Example.COM.pem')).toBe('file-shop.example.com');
    expect(fileId('my cert (2).crt')).toBe('file-my-cert--2-');
    expect(fileId('..pem')).toBe('file-cert');
  });
});
