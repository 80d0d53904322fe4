import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextFor, fakeAgent, fakeContainer, writeHandlerIni } from '@glue/core/contract';
import { type EtcdServer, startEtcd, tempDir, waitFor } from '@glue/testkit';
import { Publisher, Reader } from '../src/index.js';

// etcd with authentication on: a user limited to /glue/ publishes; a wrong password fails without
// blocking Glue; the reader authenticates too.
let etcd: EtcdServer;
let tmp: { path: string; cleanup: () => Promise<void> };
const ROOT = '--user=root:rootpw';

beforeAll(async () => {
  tmp = await tempDir('glue-etcd-auth-');
  etcd = await startEtcd();
  await etcd.ctl(['user', 'add', 'root', '--new-user-password=rootpw']);
  await etcd.ctl(['user', 'grant-role', 'root', 'root']);
  await etcd.ctl(['role', 'add', 'glue']);
  await etcd.ctl(['role', 'grant-permission', 'glue', '--prefix=true', 'readwrite', '/glue/']);
  await etcd.ctl(['user', 'add', 'glue', '--new-user-password=gluepw']);
  await etcd.ctl(['user', 'grant-role', 'glue', 'glue']);
  await etcd.ctl(['auth', 'enable']);
});

afterAll(async () => {
  await etcd?.stop();
  await tmp?.cleanup();
});

async function keysAsRoot(prefix: string): Promise<string[]> {
  const out = await etcd.ctl([ROOT, 'get', '--prefix', '--keys-only', prefix]);
  return out.split('\n').filter(Boolean).sort();
}

describe('etcd with authentication', () => {
  it('publishes with user and password, and deletes on stop', async () => {
    const agent = fakeAgent();
    const c = fakeContainer({ name: 'auth-web', ip: '10.0.0.5', labels: { glue_http_80_host: 'auth.example.com' } });
    agent.put(c);
    const ini = writeHandlerIni(tmp.path, 'auth.ini', { endpoints: etcd.endpoint, 'host-id': 'auth-h', user: 'glue', password: 'gluepw', ttl: '10' });
    const publisher = new Publisher(agent, ini.path, ini);
    await publisher.start();
    await publisher.handle('none', '', contextFor(agent, 'none', ''));
    await waitFor(async () => (await keysAsRoot('/glue/')).length === 3, { what: 'three keys' });
    expect(await keysAsRoot('/glue/')).toEqual([`/glue/hosts/auth-h/containers/${c.Id}`, '/glue/hosts/auth-h/owner', `/glue/http/auth.example.com/auth-h/${c.Id}/80`].sort());
    const reader = new Reader({ endpoints: etcd.endpoint, auth: { username: 'glue', password: 'gluepw' } });
    try {
      expect((await reader.serving('auth.example.com')).map((e) => e.name)).toEqual(['auth-web']);
    } finally {
      await reader.close();
    }
    await publisher.stop();
    expect(await keysAsRoot('/glue/')).toEqual([]);
  });

  it('a wrong password: handle() returns, nothing is written, Glue is not blocked', async () => {
    const agent = fakeAgent();
    agent.put(fakeContainer({ name: 'auth-bad' }));
    const ini = writeHandlerIni(tmp.path, 'bad.ini', { endpoints: etcd.endpoint, 'host-id': 'auth-bad', user: 'glue', password: 'wrong', ttl: '10', 'write-timeout': '3' });
    const publisher = new Publisher(agent, ini.path, ini);
    await publisher.start();
    try {
      await publisher.handle('none', '', contextFor(agent, 'none', ''));
      await waitFor(() => publisher.state?.state === 'down', { what: 'the publisher to report etcd down' });
      expect(await keysAsRoot('/glue/')).toEqual([]);
    } finally {
      await publisher.stop();
    }
  });
});
