import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, contextFor, fakeAgent, fakeContainer, writeHandlerIni } from '@glue/core/contract';
import { type EtcdServer, requireBinary, startEtcd, tempDir, waitFor } from '@glue/testkit';
import { Publisher } from '../src/publisher.js';
import { Reader } from '../src/reader.js';

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
    const ini = writeHandlerIni(tmp.path, 'auth.ini', {
      endpoints: etcd.endpoint,
      'host-id': 'auth-h',
      user: 'glue',
      password: 'gluepw',
      ttl: '10',
    });
    const publisher = new Publisher(agent, ini.path, ini);
    await publisher.start();
    await publisher.handle('none', '', contextFor(agent, 'none', ''));
    await waitFor(async () => (await keysAsRoot('/glue/')).length === 3, { what: 'three keys' });
    expect(await keysAsRoot('/glue/')).toEqual(
      [
        `/glue/hosts/auth-h/containers/${c.Id}`,
        '/glue/hosts/auth-h/owner',
        `/glue/http/auth.example.com/auth-h/${c.Id}/80`,
      ].sort(),
    );
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
    const ini = writeHandlerIni(tmp.path, 'bad.ini', {
      endpoints: etcd.endpoint,
      'host-id': 'auth-bad',
      user: 'glue',
      password: 'wrong',
      ttl: '10',
      'write-timeout': '3',
    });
    const publisher = new Publisher(agent, ini.path, ini);
    await publisher.start();
    try {
      await publisher.handle('none', '', contextFor(agent, 'none', ''));
      await waitFor(() => publisher.state === 'down', { what: 'the publisher to report etcd down' });
      expect(await keysAsRoot('/glue/')).toEqual([]);
    } finally {
      await publisher.stop();
    }
  });

  it('a wrong password: one clear error line, nothing published; fixed with etcdctl user passwd, it publishes without a restart', async () => {
    await etcd.ctl([ROOT, 'user', 'add', 'fixme', '--new-user-password=right']);
    await etcd.ctl([ROOT, 'user', 'grant-role', 'fixme', 'glue']);
    const log = captureLogger();
    const agent = fakeAgent({ logger: log.logger });
    const c = fakeContainer({ name: 'auth-fix', ip: '10.0.0.6', labels: { glue_http_80_host: 'fix.example.com' } });
    agent.put(c);
    const ini = writeHandlerIni(tmp.path, 'fix.ini', {
      endpoints: etcd.endpoint,
      'host-id': 'auth-fix',
      user: 'fixme',
      password: 'typo',
      ttl: '10',
      'write-timeout': '1',
      'backoff-max': '1',
    });
    const publisher = new Publisher(agent, ini.path, ini);
    await publisher.start();
    try {
      // handle() returns (other handlers are not held up); the publisher keeps retrying in the background.
      await publisher.handle('none', '', contextFor(agent, 'none', ''));
      await waitFor(() => log.errors().length > 0, { what: 'the credential error line' });
      const line = log.errors()[0]!;
      expect(line.msg).toContain(`etcd: http://${etcd.endpoint} refused user "fixme": authentication failed`);
      expect(line.msg).toContain(`check user and password in ${ini.path} [params]`);
      expect(line).toMatchObject({
        user: 'fixme',
        endpoints: [`http://${etcd.endpoint}`],
        err: expect.stringContaining('authentication failed'),
      });
      expect(JSON.stringify(log.lines)).not.toContain('typo');
      // Several retries later (backoff-max=1 s): still nothing in etcd, and the line was not repeated.
      await new Promise((r) => setTimeout(r, 3500));
      expect(await keysAsRoot('/glue/hosts/auth-fix/')).toEqual([]);
      expect(log.errors()).toHaveLength(1);
      expect(log.lines.filter((l) => l.level === 40 && /etcd/.test(l.msg))).toEqual([]);

      await passwd('fixme', 'typo');
      await waitFor(async () => (await keysAsRoot('/glue/')).some((k) => k.includes('/auth-fix/')), {
        what: 'the keys after the password fix',
        timeoutMs: 20_000,
      });
      expect((await keysAsRoot('/glue/')).filter((k) => k.includes('auth-fix'))).toEqual(
        [
          `/glue/hosts/auth-fix/containers/${c.Id}`,
          '/glue/hosts/auth-fix/owner',
          `/glue/http/fix.example.com/auth-fix/${c.Id}/80`,
        ].sort(),
      );
      expect(log.lines.some((l) => /credentials accepted again/.test(l.msg))).toBe(true);

      // The password changes on the etcd side while publishing (etcd 3.4 still renews the lease on the
      // old token): the next write is refused and the same error line says so.
      await passwd('fixme', 'rotated');
      const c2 = fakeContainer({ name: 'auth-fix2', ip: '10.0.0.9', labels: { glue_http_80_host: 'fix.example.com' } });
      agent.put(c2);
      await publisher.handle('start', c2.Id, contextFor(agent, 'start', c2.Id));
      await waitFor(() => log.errors().length === 2, {
        what: 'the credential error line after the password changed',
        timeoutMs: 20_000,
      });
      expect(log.errors()[1]?.msg).toContain('refused user "fixme": authentication failed');
    } finally {
      await publisher.stop();
    }
  });

  it('permission denied: one error line with a grant hint; granting the role publishes without a restart', async () => {
    await etcd.ctl([ROOT, 'user', 'add', 'noperm', '--new-user-password=pw']);
    const log = captureLogger();
    const agent = fakeAgent({ logger: log.logger });
    agent.put(fakeContainer({ name: 'auth-perm' }));
    const ini = writeHandlerIni(tmp.path, 'perm.ini', {
      endpoints: etcd.endpoint,
      'host-id': 'auth-perm',
      user: 'noperm',
      password: 'pw',
      ttl: '10',
      'write-timeout': '1',
      'backoff-max': '1',
    });
    const publisher = new Publisher(agent, ini.path, ini);
    await publisher.start();
    try {
      await publisher.handle('none', '', contextFor(agent, 'none', ''));
      await waitFor(() => log.errors().length > 0, { what: 'the permission error line' });
      expect(log.errors()[0]?.msg).toMatch(
        /refused user "noperm": permission denied; grant "noperm" a role with readwrite on \/glue\//,
      );
      expect(await keysAsRoot('/glue/hosts/auth-perm/')).toEqual([]);
      await etcd.ctl([ROOT, 'user', 'grant-role', 'noperm', 'glue']);
      await waitFor(async () => (await keysAsRoot('/glue/hosts/auth-perm/')).length === 2, {
        what: 'the keys after the grant',
        timeoutMs: 20_000,
      });
      expect(log.errors()).toHaveLength(1);
    } finally {
      await publisher.stop();
    }
  });
});

/** `etcdctl user passwd` as root, the new password on stdin (as an operator would fix it). */
function passwd(user: string, password: string): Promise<void> {
  const bin = requireBinary('etcdctl');
  return new Promise((resolve, reject) => {
    const child = execFile(
      bin,
      [`--endpoints=${etcd.url}`, ROOT, 'user', 'passwd', user, '--interactive=false'],
      { env: { ETCDCTL_API: '3' }, timeout: 10_000 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`etcdctl user passwd ${user}: ${err.message} ${stderr}`))
          : /Password updated/.test(stdout)
            ? resolve()
            : reject(new Error(`etcdctl user passwd ${user}: ${stdout} ${stderr}`)),
    );
    child.stdin?.end(`${password}\n`);
  });
}
