import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ParamError } from '@glue/core';
import { fakeAgent, writeHandlerIni } from '@glue/core/contract';
import { parseParams } from '../src/params.js';
import { Publisher } from '../src/publisher.js';
import { describeEtcdError as errorMessage } from '../src/etcd-errors.js';

async function inTempDir(test: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'glue-etcd-params-'));
  try {
    await test(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('params', () => {
  it('has defaults for everything', () => {
    const { settings, problems } = parseParams({});
    expect(problems).toEqual([]);
    expect(settings).toMatchObject({
      endpoints: ['http://127.0.0.1:2379'],
      prefix: '/glue',
      ttlSeconds: 30,
      hostId: undefined,
      deleteOnStop: true,
      writeTimeoutMs: 5000,
      resyncMs: 300_000,
      fields: { mode: 'summary' },
    });
  });

  it('reads endpoints, TLS, auth and the rest', () =>
    inTempDir((dir) => {
      const [ca, cert, key] = ['ca.pem', 'c.pem', 'k.pem'].map((f) => join(dir, f));
      for (const f of [ca, cert, key]) writeFileSync(f as string, 'pem\n');
      const { settings, problems } = parseParams({
        endpoints: '10.0.0.1:2379, https://etcd.example.com:2379',
        prefix: 'disco/',
        ttl: '10',
        'host-id': 'web-01',
        user: 'glue',
        password: 's3cret',
        'ca-file': ca as string,
        'cert-file': cert as string,
        'key-file': key as string,
        fields: 'full',
        'delete-on-stop': 'no',
        'write-timeout': '0',
        'resync-interval': '0',
      });
      expect(problems).toEqual([]);
      expect(settings).toMatchObject({
        endpoints: ['https://10.0.0.1:2379', 'https://etcd.example.com:2379'],
        prefix: '/disco',
        ttlSeconds: 10,
        hostId: 'web-01',
        auth: { username: 'glue', password: 's3cret' },
        tls: { caFile: ca, certFile: cert, keyFile: key },
        fields: { mode: 'full' },
        deleteOnStop: false,
        writeTimeoutMs: 0,
        resyncMs: 0,
      });
    }));

  it('a TLS file that is not a regular file is a problem of its key (a FIFO would block the read forever)', () =>
    inTempDir((dir) => {
      execFileSync('mkfifo', [join(dir, 'ca.pem')]);
      const { problems } = parseParams({
        'ca-file': join(dir, 'ca.pem'),
        'cert-file': dir,
        'key-file': join(dir, 'nope.pem'),
      });
      expect(problems).toEqual([
        { key: 'ca-file', reason: expect.stringMatching(/is a FIFO \(named pipe\), not a regular file$/) },
        { key: 'cert-file', reason: expect.stringMatching(/is a directory, not a regular file$/) },
        { key: 'key-file', reason: expect.stringMatching(/nope\.pem" does not exist$/) },
      ]);
    }));

  it('reports every bad param with its key', () => {
    const { settings, problems } = parseParams({
      endpoints: 'ftp://x:1, 127.0.0.1',
      prefix: '/',
      ttl: '1',
      'host-id': '../etc',
      user: 'u',
      'cert-file': '/c.pem',
      fields: 'everything',
      'delete-on-stop': 'maybe',
      'resync-interval': '1',
    });
    expect(settings).toBeUndefined();
    expect(problems.map((p) => p.key).sort()).toEqual(
      // cert-file: /c.pem does not exist.
      [
        'ca-file',
        'cert-file',
        'delete-on-stop',
        'endpoints',
        'endpoints',
        'fields',
        'host-id',
        'key-file',
        'password',
        'prefix',
        'resync-interval',
        'ttl',
      ].sort(),
    );
  });
});

describe('publish-env', () => {
  it('is off by default and only goes with fields=full', () => {
    expect(parseParams({ fields: 'full' }).settings?.fields.publishEnv).toBeUndefined();
    expect(parseParams({ fields: 'full', 'publish-env': 'yes' }).settings?.fields).toMatchObject({
      mode: 'full',
      publishEnv: true,
    });
    expect(parseParams({ fields: 'full', 'publish-env': 'no' }).settings?.fields.publishEnv).toBeUndefined();
    expect(parseParams({ 'publish-env': 'yes' }).problems).toEqual([
      { key: 'publish-env', reason: expect.stringMatching(/only applies with fields=full/) },
    ]);
    expect(parseParams({ fields: 'full', 'publish-env': 'perhaps' }).problems.map((p) => p.key)).toEqual([
      'publish-env',
    ]);
  });
});

describe('address, advertise-address, network', () => {
  it('container by default; published once advertise-address is given; published needs it', () => {
    expect(parseParams({}).settings?.endpoint).toEqual({ mode: 'container', advertise: undefined, network: undefined });
    expect(parseParams({ 'advertise-address': '10.1.0.5' }).settings?.endpoint).toEqual({
      mode: 'published',
      advertise: '10.1.0.5',
      network: undefined,
    });
    expect(
      parseParams({ 'advertise-address': '10.1.0.5', address: 'container', network: 'overlay1' }).settings?.endpoint,
    ).toEqual({ mode: 'container', advertise: '10.1.0.5', network: 'overlay1' });
    expect(parseParams({ address: 'published' }).problems).toEqual([
      { key: 'address', reason: expect.stringMatching(/^published needs advertise-address/) },
    ]);
    expect(
      parseParams({ address: 'nat', 'advertise-address': 'host.example.com' }).problems.map((p) => [p.key, p.reason]),
    ).toEqual([
      ['address', '"nat": is not container or published'],
      ['advertise-address', '"host.example.com": is not an IP address (the address other hosts reach this host at)'],
    ]);
  });
});

describe('unknown params', () => {
  it('are refused, every one, with the known keys and a likely meaning', () => {
    const { settings, problems } = parseParams({
      endpoint: '10.0.0.1:2379',
      host_id: 'web-01',
      ttl: '1',
      colour: 'blue',
    });
    expect(settings).toBeUndefined();
    expect(problems.map((p) => p.key).sort()).toEqual(['colour', 'endpoint', 'host_id', 'ttl']);
    const reason = (k: string): string => problems.find((p) => p.key === k)?.reason ?? '';
    expect(reason('endpoint')).toMatch(
      /^unknown key \(did you mean endpoints\?\); known keys: endpoints, prefix, ttl, host-id, /,
    );
    expect(reason('host_id')).toMatch(/did you mean host-id\?/);
    expect(reason('colour')).toMatch(
      /^unknown key; known keys: .*resync-interval, address, advertise-address, network$/,
    );
  });

  it('name the INI file and the key in the error the daemon reports', async () => {
    await inTempDir((dir) => {
      const ini = writeHandlerIni(dir, 'publish.ini', { endpoint: '10.0.0.1:2379', 'host-id': 'h' });
      expect(() => new Publisher(fakeAgent(), ini.path, ini)).toThrow(ParamError);
      expect(() => new Publisher(fakeAgent(), ini.path, ini)).toThrow(
        /^publish\.ini \[params\] endpoint: unknown key \(did you mean endpoints\?\); known keys: endpoints, /,
      );
    });
  });
});

describe('etcd error messages', () => {
  it('say plainly what went wrong', () => {
    expect(
      errorMessage(
        new Error(
          '14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:35407. Resolution note: ',
        ),
      ),
    ).toBe('connection refused by 127.0.0.1:35407');
    expect(errorMessage(new Error('Execution prevented because the circuit breaker is open'))).toMatch(
      /^etcd unreachable/,
    );
    expect(errorMessage(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded'))).toBe('etcd did not answer in time');
    expect(errorMessage(new Error('etcdserver: permission denied'))).toBe('etcdserver: permission denied');
  });
});

describe('Publisher construction', () => {
  it('throws a ParamError naming the INI file, the first bad key and the others', async () => {
    await inTempDir((dir) => {
      const ini = writeHandlerIni(dir, 'publish.ini', { ttl: '1', prefix: '/' });
      let caught: unknown;
      try {
        new Publisher(fakeAgent(), ini.path, ini);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ParamError);
      expect((caught as Error).message).toMatch(/^publish\.ini \[params\] prefix: .*\npublish\.ini \[params\] ttl: /);
      expect((caught as ParamError).problems.map((p) => p.key)).toEqual(['prefix', 'ttl']);
      const ok = writeHandlerIni(dir, 'ok.ini', { 'host-id': 'h' });
      expect(new Publisher(fakeAgent(), ok.path, ok).settings.hostId).toBe('h');
    });
  });
});
