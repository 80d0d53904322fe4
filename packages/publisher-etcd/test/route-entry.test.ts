import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fakeContainer } from '@glue/core/contract';
import { containerEntries } from '../src/record.js';
import { checkHttpEntry } from '../src/route-entry.js';
import { httpKey } from '../src/keys.js';

const ID = 'c'.repeat(64);

/** A valid entry as the publisher writes it, with `patch` applied to its JSON. */
function entry(patch: Record<string, unknown> = {}): { key: string; value: string } {
  const base = {
    v: 1,
    host: 'node-1',
    id: ID,
    name: 'web1',
    vhost: 'shop.example.com',
    port: 80,
    prefix: '',
    stripPrefix: false,
    weight: 100,
    addresses: { bridge: '172.17.0.2' },
    endpoint: { address: '10.0.0.5', port: 32768 },
    health: null,
    container: `/glue/hosts/node-1/containers/${ID}`,
    ...patch,
  };
  return {
    key: httpKey('/glue', String(base.vhost), String(base.host), String(base.id), Number(base.port)),
    value: JSON.stringify(base),
  };
}

describe('checkHttpEntry: index entries read back are untrusted', () => {
  it('accepts every entry the publisher writes (label grammar round trip)', () => {
    const hostLabel = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
    fc.assert(
      fc.property(
        fc.array(hostLabel, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 65535 }),
        fc.constantFrom('', 'api', 'a/b.c', '~x'),
        fc.integer({ min: 0, max: 256 }),
        fc.boolean(),
        (labels, port, prefix, weight, strip) => {
          const info = fakeContainer({
            name: 'web_1.x',
            ip: '172.17.0.9',
            labels: {
              [`glue_http_${port}_host`]: labels.join('.'),
              [`glue_http_${port}_prefix`]: prefix,
              [`glue_http_${port}_weight`]: String(weight),
              [`glue_http_${port}_strip_prefix`]: String(strip),
            },
          });
          const { entries } = containerEntries(info, '/glue', 'node-1@a');
          const index = [...entries].filter(([k]) => k.startsWith('/glue/http/'));
          expect(index).toHaveLength(1);
          for (const [key, value] of index) expect(checkHttpEntry('/glue', key, value)).toMatchObject({ ok: true });
        },
      ),
    );
  });

  it.each([
    ['a directive in the vhost', { vhost: 'a.com\n  server evil 1.2.3.4:80' }, /vhost .* is not a hostname/],
    ['a space in the prefix', { prefix: 'api use_backend x' }, /prefix .* is not a path prefix/],
    ['weight 300', { weight: 300 }, /weight: /],
    ['port 0 (in its key too)', { port: 0 }, /is not an index key/],
    [
      'an address that is not an IP',
      { endpoint: { address: 'evil.example.com', port: 80 } },
      /endpoint address "evil.example.com" is not an IP/,
    ],
    ['endpoint port 70000', { endpoint: { address: '10.0.0.5', port: 70000 } }, /endpoint.port/],
    ['a name with a space', { name: 'web 1' }, /name "web 1" is not a container name/],
    ['an unknown version', { v: 2 }, /schema \(v:/],
    ['a host id with a slash', { host: 'a/b' }, /host "a\/b" is not a host id/],
    ['an id that is not hex', { id: 'not-an-id-at-all' }, /id "not-an-id-at-all" is not a container id/],
    ['upper-case vhost', { vhost: 'Shop.example.com' }, /not lower-case/],
    ['a prefix with a leading slash', { prefix: '/api' }, /normal form/],
    ['strip without prefix', { stripPrefix: true }, /stripPrefix is set without a prefix/],
  ])('refuses %s, saying what is wrong', (_what, patch, reason) => {
    const { key, value } = entry(patch);
    const checked = checkHttpEntry('/glue', key, value);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.reason).toMatch(reason);
  });

  it('refuses a value whose key says another vhost, host, container or port', () => {
    const { value } = entry();
    for (const key of [
      httpKey('/glue', 'bank.example.com', 'node-1', ID, 80),
      httpKey('/glue', 'shop.example.com', 'node-2', ID, 80),
      httpKey('/glue', 'shop.example.com', 'node-1', 'd'.repeat(64), 80),
      httpKey('/glue', 'shop.example.com', 'node-1', ID, 81),
    ]) {
      const checked = checkHttpEntry('/glue', key, value);
      expect(checked).toMatchObject({ ok: false, reason: expect.stringMatching(/but its key says/) });
    }
  });

  it('refuses what is not JSON or not an index key', () => {
    expect(checkHttpEntry('/glue', entry().key, '{nope')).toEqual({ ok: false, reason: 'is not JSON' });
    expect(checkHttpEntry('/glue', '/glue/http/x', entry().value)).toMatchObject({ ok: false });
  });
});
