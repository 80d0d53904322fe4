import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextFor, fakeAgent, fakeContainer, writeHandlerIni } from '@glue/core/contract';
import { type EtcdServer, makeTestCerts, startEtcd, type TestCerts, tempDir, waitFor } from '@glue/testkit';
import { Publisher } from '../src/publisher.js';
import { Reader } from '../src/reader.js';

// etcd over TLS with client certificates (mutual TLS), certificates made by openssl for the test.
let etcd: EtcdServer;
let certs: TestCerts;
let tmp: { path: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await tempDir('glue-etcd-tls-');
  certs = await makeTestCerts(tmp.path);
  etcd = await startEtcd({ tls: certs });
});

afterAll(async () => {
  await etcd?.stop();
  await tmp?.cleanup();
});

describe('etcd over mutual TLS', () => {
  // Runs first: Node prints DEP0123 once per process. grpc-js sets the TLS ServerName to the
  // endpoint's host, so an IP endpoint (127.0.0.1) triggers it; a name does not. See the README.
  it('endpoints given by name (localhost): published, and no DEP0123 warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }): void => void warnings.push(w.code ?? w.name);
    process.on('warning', onWarning);
    const agent = fakeAgent();
    agent.put(fakeContainer({ name: 'tls-name', ip: '10.0.0.8', labels: { glue_http_80_host: 'name.example.com' } }));
    const port = etcd.endpoint.split(':')[1];
    const ini = writeHandlerIni(tmp.path, 'name.ini', {
      endpoints: `localhost:${port}`,
      'host-id': 'tls-name',
      'ca-file': certs.ca,
      'cert-file': certs.clientCert,
      'key-file': certs.clientKey,
      ttl: '10',
    });
    const publisher = new Publisher(agent, ini.path, ini);
    try {
      await publisher.start();
      await publisher.handle('none', '', contextFor(agent, 'none', ''));
      await waitFor(async () => Object.keys(await etcd.keys('/glue/hosts/tls-name/')).length === 2, {
        what: 'keys over TLS by name',
      });
      await new Promise((r) => setImmediate(r));
      expect(warnings).not.toContain('DEP0123');
    } finally {
      process.off('warning', onWarning);
      await publisher.stop();
    }
    expect(await etcd.keys('/glue/')).toEqual({});
  });

  it('publishes with ca-file, cert-file and key-file (endpoints become https://)', async () => {
    const agent = fakeAgent();
    const c = fakeContainer({ name: 'tls-web', ip: '10.0.0.7', labels: { glue_http_80_host: 'tls.example.com' } });
    agent.put(c);
    const ini = writeHandlerIni(tmp.path, 'tls.ini', {
      endpoints: etcd.endpoint,
      'host-id': 'tls-h',
      'ca-file': certs.ca,
      'cert-file': certs.clientCert,
      'key-file': certs.clientKey,
      ttl: '10',
    });
    const publisher = new Publisher(agent, ini.path, ini);
    expect(publisher.settings.endpoints).toEqual([`https://${etcd.endpoint}`]);
    await publisher.start();
    await publisher.handle('none', '', contextFor(agent, 'none', ''));
    await waitFor(async () => Object.keys(await etcd.keys('/glue/')).length === 3, { what: 'three keys over TLS' });
    const reader = new Reader({
      endpoints: etcd.endpoint,
      tls: { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey },
    });
    try {
      expect((await reader.serving('tls.example.com')).map((e) => e.name)).toEqual(['tls-web']);
    } finally {
      await reader.close();
    }
    await publisher.stop();
    expect(await etcd.keys('/glue/')).toEqual({});
  });

  it('without a client certificate etcd refuses, and the publisher reports etcd down without blocking', async () => {
    const agent = fakeAgent();
    agent.put(fakeContainer({ name: 'tls-nocert' }));
    const ini = writeHandlerIni(tmp.path, 'nocert.ini', {
      endpoints: etcd.endpoint,
      'host-id': 'tls-nocert',
      'ca-file': certs.ca,
      ttl: '10',
      'write-timeout': '3',
    });
    const publisher = new Publisher(agent, ini.path, ini);
    await publisher.start();
    try {
      await publisher.handle('none', '', contextFor(agent, 'none', ''));
      await waitFor(() => publisher.state === 'down', { what: 'etcd down', timeoutMs: 15_000 });
      expect(await etcd.keys('/glue/')).toEqual({});
    } finally {
      await publisher.stop();
    }
  });

  it('a TLS file that does not exist is a param problem; one that is gone by start() fails start() with its path', async () => {
    const missing = writeHandlerIni(tmp.path, 'missing.ini', {
      endpoints: etcd.endpoint,
      'ca-file': `${tmp.path}/nope.pem`,
    });
    expect(() => new Publisher(fakeAgent(), missing.path, missing)).toThrow(
      /\[params\] ca-file: ".*nope\.pem" does not exist/,
    );
    writeFileSync(`${tmp.path}/gone.pem`, 'pem\n');
    const ini = writeHandlerIni(tmp.path, 'gone.ini', { endpoints: etcd.endpoint, 'ca-file': `${tmp.path}/gone.pem` });
    const publisher = new Publisher(fakeAgent(), ini.path, ini);
    rmSync(`${tmp.path}/gone.pem`);
    await expect(publisher.start()).rejects.toThrow(/cannot read ca-file .*gone\.pem/);
    await publisher.stop();
  });
});
