import { circuitBreaker, ConsecutiveBreaker, handleWhen } from 'cockatiel';
import { Etcd3, type IOptions, isRecoverableError } from 'etcd3';
import { readRegularFile } from '@glue/core';

export interface ClientSettings {
  /** Client URLs with scheme, e.g. `http://127.0.0.1:2379`. */
  endpoints: string[];
  auth?: { username: string; password: string } | undefined;
  tls?: { caFile: string; certFile?: string | undefined; keyFile?: string | undefined } | undefined;
  /** Deadline of one unary call. Default 5 s. */
  callTimeoutMs?: number;
}

/**
 * An etcd3 client tuned for a daemon: short dial and call deadlines (a down etcd must not hold
 * handlers), quick gRPC reconnects and a short circuit breaker. Creating it does not touch the network. Reads the TLS files now,
 * so a missing file fails at start-up with its path.
 */
export function createEtcdClient(settings: ClientSettings): Etcd3 {
  const callTimeout = settings.callTimeoutMs ?? 5000;
  const options: IOptions = {
    hosts: settings.endpoints,
    dialTimeout: Math.min(callTimeout, 3000),
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeout }),
    // etcd3's default breaker fails every call for 5 s after 3 failures of a host: with one endpoint that
    // only makes Glue late to notice etcd is back. 1 s still spares a dead host of a cluster.
    faultHandling: {
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
    },
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2000,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5000,
    },
  };
  if (settings.auth) options.auth = { username: settings.auth.username, password: settings.auth.password };
  if (settings.tls) {
    const read = (what: string, path: string): Buffer => {
      try {
        // Never a FIFO or a device (a read that blocks forever), never more than 1 MiB.
        return readRegularFile(path);
      } catch (err) {
        throw new Error(`cannot read ${what} ${path}: ${(err as Error).message}`, { cause: err });
      }
    };
    options.credentials = {
      rootCertificate: read('ca-file', settings.tls.caFile),
      ...(settings.tls.certFile ? { certChain: read('cert-file', settings.tls.certFile) } : {}),
      ...(settings.tls.keyFile ? { privateKey: read('key-file', settings.tls.keyFile) } : {}),
    };
  }
  return new Etcd3(options);
}
