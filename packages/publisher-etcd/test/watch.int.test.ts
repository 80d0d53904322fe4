import { createServer, type Server, type Socket, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EtcdServer, startEtcd, waitFor } from '@glue/testkit';
import { type ContainerChange, Reader } from '../src/reader.js';

// A reader's watch must stay current even when etcd cancels it: after a long disconnect its resume
// revision may have been compacted, and the etcd client then gives up on the watch. The reader talks
// to etcd through a TCP relay the test can cut, so the disconnect is real and its length is ours.

/** A TCP relay to etcd that can drop every connection and refuse new ones while cut. */
class Relay {
  readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private cut = false;

  constructor(target: { host: string; port: number }) {
    this.server = createServer((client) => {
      if (this.cut) {
        client.destroy();
        return;
      }
      const upstream = connect(target.port, target.host);
      this.sockets.add(client).add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('relay has no port');
    return `127.0.0.1:${address.port}`;
  }

  disconnect(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  reconnect(): void {
    this.cut = false;
  }

  close(): Promise<void> {
    this.disconnect();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let etcd: EtcdServer;
let relay: Relay;
let endpoint: string;

const ID = (n: number): string => String(n).repeat(64).slice(0, 64);
const key = (n: number): string => `/glue/hosts/h1/containers/${ID(n)}`;
const record = (n: number, name: string): string => JSON.stringify({ v: 1, host: 'h1', id: ID(n), name });

beforeAll(async () => {
  etcd = await startEtcd();
  const [host, port] = etcd.endpoint.split(':');
  relay = new Relay({ host: host!, port: Number(port) });
  endpoint = await relay.listen();
});

afterAll(async () => {
  await relay?.close();
  await etcd?.stop();
});

describe('Reader.watch when etcd cancels the watch', () => {
  it('lists again after its revision was compacted during a disconnect, reports the difference and follows on', async () => {
    await etcd.ctl(['put', key(1), record(1, 'one')]);
    await etcd.ctl(['put', key(2), record(2, 'two')]);
    const reader = new Reader({ endpoints: endpoint });
    const changes: ContainerChange[] = [];
    const errors: Error[] = [];
    try {
      const watch = await reader.watch({ onChange: (c) => changes.push(c), onError: (e) => errors.push(e) });
      expect(
        watch
          .byHost('h1')
          .map((r) => r.name)
          .sort(),
      ).toEqual(['one', 'two']);

      relay.disconnect();
      // While the reader is cut off: one container goes, one changes, one comes, and etcd compacts
      // its history past the revision the watch would resume from.
      await etcd.ctl(['del', key(1)]);
      await etcd.ctl(['put', key(2), record(2, 'two-renamed')]);
      await etcd.ctl(['put', key(3), record(3, 'three')]);
      const status = JSON.parse(await etcd.ctl(['endpoint', 'status', '-w', 'json'])) as {
        Status: { header: { revision: number } };
      }[];
      const revision = status[0]!.Status.header.revision;
      await etcd.ctl(['compact', String(revision)]);
      relay.reconnect();

      await waitFor(
        () =>
          watch
            .byHost('h1')
            .map((r) => r.name)
            .sort()
            .join() === 'three,two-renamed',
        { timeoutMs: 30_000, what: 'the watch to catch up after the compaction' },
      );
      expect(errors.some((e) => /cancelled by etcd/.test(e.message))).toBe(true);
      expect(changes).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'delete', key: key(1), host: 'h1', id: ID(1) }),
          expect.objectContaining({
            type: 'put',
            key: key(2),
            record: expect.objectContaining({ name: 'two-renamed' }),
          }),
          expect.objectContaining({ type: 'put', key: key(3), record: expect.objectContaining({ name: 'three' }) }),
        ]),
      );

      // And it watches on from the new revision.
      await etcd.ctl(['put', key(4), record(4, 'four')]);
      await etcd.ctl(['del', key(3)]);
      await waitFor(
        () =>
          watch
            .byHost('h1')
            .map((r) => r.name)
            .sort()
            .join() === 'four,two-renamed',
        { timeoutMs: 10_000, what: 'the watch to follow changes after recovering' },
      );
      await watch.close();
    } finally {
      await reader.close();
    }
  });
});
