import { describe, expect, it } from 'vitest';
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
