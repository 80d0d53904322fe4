import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { silentLogger } from '@glue/core';
import { captureLogger } from '@glue/core/contract';
import type { Etcd3 } from 'etcd3';
import { containerKey, httpKey, ownerKey } from '../src/keys.js';
import { credentialProblem, EtcdSync } from '../src/sync.js';

/**
 * An in-memory etcd with what EtcdSync uses: range, txn with a lease compare, leases. It can be
 * "down" (every call fails) or lose a response after applying a transaction (the worst case for a
 * writer: it does not know whether its write happened).
 */
class FakeEtcd {
  readonly store = new Map<string, { value: Buffer; lease: string }>();
  readonly leases = new Set<string>();
  private next = 1;
  down = false;
  /** An error etcd answers every call with while set (e.g. wrong credentials). */
  refuse: string | undefined;
  calls = 0;
  loseNextResponse = false;
  writes = 0;

  private check(): void {
    this.calls += 1;
    if (this.refuse !== undefined) throw new Error(this.refuse);
    if (this.down) throw new Error('14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:2379');
  }

  revoke(id: string): void {
    this.leases.delete(id);
    for (const [k, v] of this.store) if (v.lease === id) this.store.delete(k);
  }

  readonly client = {
    leaseClient: {
      leaseGrant: async ({ TTL }: { TTL: number }) => {
        this.check();
        const id = String(this.next++);
        this.leases.add(id);
        return { ID: id, TTL: String(TTL) };
      },
      leaseTimeToLive: async ({ ID }: { ID: string }) => {
        this.check();
        return { TTL: this.leases.has(String(ID)) ? '60' : '-1' };
      },
      leaseRevoke: async ({ ID }: { ID: string }) => {
        this.check();
        this.revoke(String(ID));
        return {};
      },
      leaseKeepAlive: async () => {
        this.check();
        const handlers = new Map<string, (v: unknown) => void>();
        return {
          on: (event: string, cb: (v: unknown) => void) => void handlers.set(event, cb),
          write: ({ ID }: { ID: string }) =>
            setImmediate(() => handlers.get('data')?.({ TTL: this.leases.has(String(ID)) ? '60' : '0' })),
          end: () => undefined,
        };
      },
    },
    kv: {
      range: async ({ key, range_end, keys_only }: { key: Buffer; range_end: Buffer; keys_only?: boolean }) => {
        this.check();
        const kvs = [...this.store]
          .filter(([k]) => Buffer.compare(Buffer.from(k), key) >= 0 && Buffer.compare(Buffer.from(k), range_end) < 0)
          .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
          .map(([k, v]) => ({ key: Buffer.from(k), value: keys_only ? Buffer.alloc(0) : v.value, lease: v.lease }));
        return { kvs, more: false, header: { revision: '1' } };
      },
      txn: async ({
        compare,
        success,
      }: {
        compare: Array<{ key: Buffer; lease: string }>;
        success: Array<{
          request_put?: { key: Buffer; value: Buffer; lease: string };
          request_delete_range?: { key: Buffer };
          request_range?: { key: Buffer };
        }>;
      }) => {
        this.check();
        for (const c of compare)
          if (this.store.get(c.key.toString())?.lease !== String(c.lease)) return { succeeded: false, responses: [] };
        for (const op of success)
          if (op.request_put && !this.leases.has(String(op.request_put.lease)))
            throw new Error('etcdserver: requested lease not found');
        const responses: Array<{ response_range?: { kvs: Array<{ key: Buffer; value: Buffer; lease: string }> } }> = [];
        for (const op of success) {
          if (op.request_put) {
            this.writes += 1;
            this.store.set(op.request_put.key.toString(), {
              value: op.request_put.value,
              lease: String(op.request_put.lease),
            });
          }
          if (op.request_delete_range) this.store.delete(op.request_delete_range.key.toString());
          if (op.request_range) {
            const v = this.store.get(op.request_range.key.toString());
            responses.push({
              response_range: { kvs: v ? [{ key: op.request_range.key, value: v.value, lease: v.lease }] : [] },
            });
          } else responses.push({});
        }
        if (this.loseNextResponse) {
          this.loseNextResponse = false;
          throw new Error('4 DEADLINE_EXCEEDED: response lost');
        }
        return { succeeded: true, responses };
      },
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Waits (real time, up to 10 s) until everything asked of `sync` is in etcd: retries sleep for real. */
async function synced(sync: EtcdSync): Promise<void> {
  for (const end = Date.now() + 10_000; Date.now() < end;) {
    if (await sync.flushed(50)) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`not synced after 10 s (state ${sync.state})`);
}

function entries(host: string, id: string, version: number): Map<string, string> {
  const m = new Map([[containerKey('/p', host, id), `${id}@${version}`]]);
  if (version % 2 === 0) m.set(httpKey('/p', 'v.example.com', host, id, 80), `${id}@${version}`);
  return m;
}

type Command =
  | { kind: 'set'; id: number; version: number }
  | { kind: 'delete'; id: number }
  | { kind: 'down' }
  | { kind: 'up' }
  | { kind: 'revoke' }
  | { kind: 'loseResponse' }
  | { kind: 'wait' };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      id: fc.integer({ min: 0, max: 9 }),
      version: fc.integer({ min: 0, max: 5 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'down' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'up' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'revoke' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'loseResponse' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'wait' as const }) },
);

describe('EtcdSync (in-memory etcd)', () => {
  it('ends exactly at the desired state whatever fails on the way, and never touches other hosts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(command, { maxLength: 60 }),
        fc.integer({ min: 0, max: 9 }),
        async (commands, stale) => {
          const etcd = new FakeEtcd();
          // Another host's keys, and a crashed predecessor's leftovers for ours (no lease).
          etcd.store.set(containerKey('/p', 'other', 'x'), { value: Buffer.from('x'), lease: '0' });
          etcd.store.set(httpKey('/p', 'v.example.com', 'other', 'x', 80), { value: Buffer.from('x'), lease: '0' });
          etcd.store.set(containerKey('/p', 'me', `stale${stale}`), { value: Buffer.from('old'), lease: '0' });
          etcd.store.set(httpKey('/p', 'v.example.com', 'me', `stale${stale}`, 80), {
            value: Buffer.from('old'),
            lease: '0',
          });
          const sync = new EtcdSync({
            client: etcd.client as unknown as Etcd3,
            prefix: '/p',
            host: 'me',
            ttlSeconds: 600,
            logger: silentLogger(),
            engine: () => ({ id: 'E', name: 'e' }),
            backoffInitialMs: 1,
            backoffMaxMs: 3,
          });
          const model = new Map<string, Map<string, string>>();
          sync.replaceAll(new Map());
          sync.start();
          try {
            for (const c of commands) {
              if (c.kind === 'set') {
                const e = entries('me', `c${c.id}`, c.version);
                model.set(`c${c.id}`, e);
                sync.set(`c${c.id}`, e);
              } else if (c.kind === 'delete') {
                model.delete(`c${c.id}`);
                sync.set(`c${c.id}`, undefined);
              } else if (c.kind === 'down') etcd.down = true;
              else if (c.kind === 'up') etcd.down = false;
              else if (c.kind === 'revoke') for (const l of [...etcd.leases]) etcd.revoke(l);
              else if (c.kind === 'loseResponse') etcd.loseNextResponse = true;
              else for (let i = 0; i < 5; i++) await tick();
              await tick();
            }
            etcd.down = false;
            // What the periodic keepalive would do: notice a revoked lease.
            await (sync as unknown as { keepalive(): Promise<void> }).keepalive();
            // Bounded in time, not in loop turns: on a loaded machine 2000 setImmediate turns could pass
            // before a 3 ms retry timer fired, and the check below ran on a sync still catching up.
            await synced(sync);

            const want = new Map<string, string>();
            for (const m of model.values()) for (const [k, v] of m) want.set(k, v);
            const have = new Map<string, string>();
            const leases = new Set<string>();
            for (const [k, v] of etcd.store) {
              if (k === ownerKey('/p', 'me')) {
                leases.add(v.lease);
                continue;
              }
              if (k.includes('/me/')) {
                have.set(k, v.value.toString());
                leases.add(v.lease);
              }
            }
            expect([...have].sort()).toEqual([...want].sort());
            // A reconcile when all is in place writes nothing.
            const before = etcd.writes;
            sync.requestReconcile();
            await synced(sync);
            expect(etcd.writes).toBe(before);
            expect(leases.size).toBe(1);
            expect(etcd.leases.has([...leases][0]!)).toBe(true);
            expect(etcd.store.get(containerKey('/p', 'other', 'x'))?.value.toString()).toBe('x');
            expect(etcd.store.has(httpKey('/p', 'v.example.com', 'other', 'x', 80))).toBe(true);
          } finally {
            await sync.stop(true);
          }
          expect([...etcd.store.keys()].filter((k) => k.includes('/me/'))).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  }, 60_000);

  it('flushed() answers false at once while etcd is down, and the change is kept', async () => {
    const etcd = new FakeEtcd();
    etcd.down = true;
    const sync = new EtcdSync({
      client: etcd.client as unknown as Etcd3,
      prefix: '/p',
      host: 'me',
      ttlSeconds: 600,
      logger: silentLogger(),
      engine: () => undefined,
      backoffInitialMs: 1,
      backoffMaxMs: 5,
    });
    sync.set('a', entries('me', 'a', 1));
    sync.start();
    for (let i = 0; i < 50 && sync.state !== 'down'; i++) await tick();
    expect(sync.state).toBe('down');
    expect(await sync.flushed(10_000)).toBe(false);
    etcd.down = false;
    for (let i = 0; i < 2000 && !(await sync.flushed(50)); i++) await tick();
    expect(etcd.store.get(containerKey('/p', 'me', 'a'))?.value.toString()).toBe('a@1');
    await sync.stop(false);
    expect(etcd.store.has(containerKey('/p', 'me', 'a'))).toBe(true);
  });

  it("wrong credentials: one error line naming endpoints, user, etcd's words and the INI file; retried at backoff-max, not repeated", async () => {
    const { logger, lines } = captureLogger('info');
    const etcd = new FakeEtcd();
    etcd.refuse = '3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password';
    const sync = new EtcdSync({
      client: etcd.client as unknown as Etcd3,
      prefix: '/p',
      host: 'me',
      ttlSeconds: 600,
      logger,
      engine: () => undefined,
      backoffInitialMs: 1,
      backoffMaxMs: 200,
      endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.1:2380'],
      user: 'glue',
      configFile: '/etc/glue/publish.ini',
    });
    sync.set('a', entries('me', 'a', 1));
    sync.start();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const errors = lines.filter((l) => l.level === 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]?.msg).toMatch(
        /^etcd: http:\/\/127\.0\.0\.1:2379,http:\/\/127\.0\.0\.1:2380 refused user "glue": authentication failed, invalid user ID or password; check user and password in \/etc\/glue\/publish\.ini \[params\]/,
      );
      expect(lines.filter((l) => l.level === 40)).toEqual([]);
      // Retried at backoff-max (200 ms): at most 2-3 calls in 300 ms, where the outage backoff
      // (1, 2, 4 … ms) would have made about 8.
      expect(etcd.calls).toBeGreaterThanOrEqual(1);
      expect(etcd.calls).toBeLessThanOrEqual(3);
      expect(sync.state).toBe('down');
      expect(sync.credentialError).toMatch(/authentication failed/);

      // etcd's answer changes: logged again at once.
      etcd.refuse = '7 PERMISSION_DENIED: etcdserver: permission denied';
      for (const end = Date.now() + 5000; Date.now() < end && lines.filter((l) => l.level === 50).length < 2;)
        await new Promise((r) => setTimeout(r, 10));
      const denied = lines.filter((l) => l.level === 50);
      expect(denied).toHaveLength(2);
      expect(denied[1]?.msg).toMatch(
        /refused user "glue": permission denied; grant "glue" a role with readwrite on \/p\//,
      );

      // Fixed on the etcd side: published without a restart.
      etcd.refuse = undefined;
      await synced(sync);
      expect(etcd.store.get(containerKey('/p', 'me', 'a'))?.value.toString()).toBe('a@1');
      expect(sync.credentialError).toBeUndefined();
      expect(lines.at(-1)?.msg).toMatch(/credentials accepted again/);
    } finally {
      await sync.stop(true);
    }
  });

  it('credentials refused while publishing (found by the keepalive): the same error line, and publishing resumes once fixed', async () => {
    const { logger, lines } = captureLogger('info');
    const etcd = new FakeEtcd();
    const sync = new EtcdSync({
      client: etcd.client as unknown as Etcd3,
      prefix: '/p',
      host: 'me',
      ttlSeconds: 600,
      logger,
      engine: () => undefined,
      backoffInitialMs: 1,
      backoffMaxMs: 20,
      user: 'glue',
    });
    sync.set('a', entries('me', 'a', 1));
    sync.start();
    try {
      await synced(sync);
      etcd.refuse = '3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password';
      await (sync as unknown as { keepalive(): Promise<void> }).keepalive();
      for (let i = 0; i < 200 && sync.credentialError === undefined; i++) await new Promise((r) => setTimeout(r, 5));
      expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual([
        expect.stringMatching(/refused user "glue": authentication failed/),
      ]);
      expect(lines.filter((l) => l.level === 40)).toEqual([]);
      etcd.refuse = undefined;
      sync.set('b', entries('me', 'b', 1));
      await synced(sync);
      expect(etcd.store.get(containerKey('/p', 'me', 'b'))?.value.toString()).toBe('b@1');
    } finally {
      await sync.stop(true);
    }
  });

  it('tells credential errors from outages', () => {
    expect(
      credentialProblem(
        new Error('3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password'),
      ),
    ).toBe('authentication failed, invalid user ID or password');
    expect(credentialProblem(new Error('7 PERMISSION_DENIED: etcdserver: permission denied'))).toBe(
      'permission denied',
    );
    expect(credentialProblem(new Error('etcdserver: user name not found'))).toBe('user name not found');
    expect(credentialProblem(new Error('14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:2379'))).toBeUndefined();
    expect(credentialProblem(new Error('4 DEADLINE_EXCEEDED'))).toBeUndefined();
  });
});
