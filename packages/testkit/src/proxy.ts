import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** `127.0.0.1:PORT`: give it instead of the real endpoint. */
  endpoint: string;
  /** Cuts the link: open connections are destroyed, new ones are accepted and dropped at once. */
  cut(): void;
  /** Forwards again. */
  restore(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy on loopback to `target` (`host:port`, loopback only) that a test can cut and restore:
 * a network partition between one client and a server that keeps running for everyone else.
 */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [host, portText] = target.split(':');
  if (host !== '127.0.0.1' && host !== 'localhost')
    throw new Error(`startTcpProxy: loopback targets only, not ${target}`);
  const sockets = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host, port: Number(portText) });
    sockets.add(client).add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('startTcpProxy: no port');
  const destroyAll = (): void => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    endpoint: `127.0.0.1:${address.port}`,
    cut: () => {
      cut = true;
      destroyAll();
    },
    restore: () => {
      cut = false;
    },
    close: async () => {
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
