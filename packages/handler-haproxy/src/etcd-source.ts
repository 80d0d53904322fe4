/**
 * The cluster view: the HTTP index that Glue's etcd publishers write on every host, listed and then
 * watched (@glue/publisher-etcd's Reader, loaded only when this source is used). Every entry was
 * checked as untrusted input by the reader; this module only turns entries into candidates.
 */
import { isIPv4 } from 'node:net';
import { createHash } from 'node:crypto';
import { backoffDelay, errorMessage, type Logger, sleep } from '@glue/core';
import type { IndexedRoute, Reader, RouteWatch } from '@glue/publisher-etcd';
import { type ConnectionSettings, parseKey } from '@glue/publisher-etcd/routes';
import type { Candidate, SkipNote } from './model.js';
import type { RouteSource } from './source.js';

/** A host id as a HAProxy server name may carry it (letters, digits and `._:-`); `@` etc. replaced, with a hash to keep it unique. */
function hostStem(host: string): string {
  if (/^[A-Za-z0-9._:-]+$/.test(host)) return host;
  return `${host.replace(/[^A-Za-z0-9._:-]/g, '-')}-${createHash('sha1').update(host).digest('hex').slice(0, 6)}`;
}

/**
 * One container's index entries -> its candidate (or only a note saying why it has none). Servers are
 * named `<host>:<name>:<port>` (a container name has no `:`, so two hosts' containers of one name never
 * share a server name). Pure. Out of rotation while its entries say paused, unhealthy or starting.
 */
export function etcdCandidate(
  containerId: string,
  group: readonly IndexedRoute[],
): { candidate: Candidate | undefined; note: SkipNote } {
  const first = group[0]!.entry;
  const note: SkipNote = { containerId, containerName: `${first.host}/${first.name}`, problems: [] };
  if (first.paused) return { candidate: undefined, note: { ...note, reason: 'paused' } };
  if (first.health === 'unhealthy' || first.health === 'starting')
    return { candidate: undefined, note: { ...note, reason: `health check says ${first.health}` } };
  const http: Candidate['http'] = [];
  for (const { entry: e } of group) {
    if (!isIPv4(e.endpoint.address)) {
      note.problems.push({
        label: `glue_http_${e.port}_host`,
        value: e.vhost,
        reason: `endpoint ${e.endpoint.address} is not an IPv4 address (IPv6 endpoints are not routed yet); this route is dropped`,
      });
      continue;
    }
    http.push({
      host: e.vhost,
      prefix: e.prefix === '' ? '' : `/${e.prefix}`,
      strip: e.stripPrefix,
      weight: e.weight,
      port: e.port,
      address: e.endpoint.address,
      targetPort: e.endpoint.port,
      tls: e.tls !== undefined,
      redirectHttps: e.tls?.redirect === true,
      hsts: e.tls?.hsts === true,
    });
  }
  if (http.length === 0) return { candidate: undefined, note: { ...note, reason: 'no valid route' } };
  const candidate: Candidate = {
    containerId,
    containerName: note.containerName,
    serverStem: `${hostStem(first.host)}:${first.name}`,
    order: Math.min(...group.map((r) => r.createRevision)),
    http,
    tcp: [],
    note,
  };
  return { candidate, note };
}

/** Every container of the index -> candidates and notes (etcdCandidate per `<host>/<id>`). */
export function etcdCandidates(routes: readonly IndexedRoute[]): { candidates: Candidate[]; notes: SkipNote[] } {
  const groups = new Map<string, IndexedRoute[]>();
  for (const r of routes) {
    const id = `${r.entry.host}/${r.entry.id}`;
    const group = groups.get(id);
    if (group) group.push(r);
    else groups.set(id, [r]);
  }
  return collect([...groups].map(([id, group]) => etcdCandidate(id, group)));
}

/**
 * Candidates with notes of their own: the model builder adds the problems it finds (a strip conflict)
 * to a candidate's note, so cached candidates are handed out as copies.
 */
function collect(results: Iterable<{ candidate: Candidate | undefined; note: SkipNote }>): {
  candidates: Candidate[];
  notes: SkipNote[];
} {
  const candidates: Candidate[] = [];
  const notes: SkipNote[] = [];
  for (const { candidate, note } of results) {
    const copy: SkipNote = { ...note, problems: [...note.problems] };
    notes.push(copy);
    if (candidate) candidates.push({ ...candidate, note: copy });
  }
  return { candidates, notes };
}

export interface EtcdSourceOptions {
  connection: ConnectionSettings;
  logger: Logger;
  /** In watch mode an etcd that cannot be reached at start is retried in the background (HAProxy keeps its last config). */
  retry: () => boolean;
}

/** source=etcd. */
export class EtcdSource implements RouteSource {
  readonly kind = 'etcd';
  private reader: Reader | undefined;
  private watch: RouteWatch | undefined;
  /** Index keys per candidate containerId (`<host>/<id>`), for alive(). */
  private readonly keys = new Map<string, Set<string>>();
  /** etcdCandidate of each container, recomputed only when one of its keys changed. */
  private readonly cache = new Map<string, ReturnType<typeof etcdCandidate>>();
  /**
   * Containers whose entries went while their host's agent still published (the owner key is there):
   * the container stopped, so its servers are retired at once (maintenance, sessions shut down).
   * Entries that went with their owner key (a lease expired, an agent stopped) are of a host that is
   * gone or cut off: its containers may still serve, so its servers only drain. Value: when it was seen.
   */
  private readonly dead = new Map<string, number>();
  private readonly ownerChecks = new Map<string, Promise<boolean>>();
  private readonly abort = new AbortController();
  private down = false;

  constructor(private readonly o: EtcdSourceOptions) {}

  private get where(): string {
    return `${this.o.connection.endpoints.join(',')} prefix ${this.o.connection.prefix}`;
  }

  async start(changed: () => void): Promise<void> {
    const { Reader } = await import('@glue/publisher-etcd');
    const c = this.o.connection;
    this.reader = new Reader({ endpoints: c.endpoints, prefix: c.prefix, auth: c.auth, tls: c.tls });
    const open = async (): Promise<void> => {
      this.watch = await this.reader!.watchRoutes({
        onChange: (key) => {
          const gone = this.track(key);
          if (gone === undefined) changed();
          // Decided before the apply: a stopped container's servers must be retired by that apply.
          else void this.classify(gone).then(changed);
        },
        onError: (err, key) =>
          this.o.logger.warn(
            key === undefined ? { err: err.message } : { key, err: err.message },
            key === undefined ? `etcd: ${err.message}` : `etcd: ${err.message}; the other entries keep routing`,
          ),
        onConnection: (up) => {
          if (!up && !this.down) {
            this.down = true;
            this.o.logger.warn(
              { etcd: this.where },
              `etcd watch lost (${this.where}): serving the last routes until it is back`,
            );
          } else if (up && this.down) {
            this.down = false;
            this.o.logger.info({ etcd: this.where }, 'etcd watch is back: applying what changed meanwhile');
          }
        },
      });
      for (const { key } of this.watch.routes()) this.track(key);
      this.o.logger.info(
        { etcd: this.where, entries: this.watch.routes().length },
        `etcd: ${this.watch.routes().length} index entries listed; watching ${this.where}`,
      );
    };
    try {
      await open();
    } catch (err) {
      if (!this.o.retry())
        throw new Error(`cannot read the index from etcd ${this.where}: ${errorMessage(err)}`, { cause: err });
      this.o.logger.warn(
        { etcd: this.where, err: errorMessage(err) },
        `etcd ${this.where} unreachable at start (${errorMessage(err)}): HAProxy keeps its last config; retrying`,
      );
      void this.retry(open, changed);
    }
  }

  private async retry(open: () => Promise<void>, changed: () => void): Promise<void> {
    for (let attempt = 1; !this.abort.signal.aborted; attempt += 1) {
      await sleep(backoffDelay(attempt, 500, 10_000), this.abort.signal);
      if (this.abort.signal.aborted) return;
      try {
        await open();
        changed();
        return;
      } catch (err) {
        this.o.logger.debug({ err: errorMessage(err), attempt }, 'etcd still unreachable');
      }
    }
  }

  /** Keeps `keys` current; returns the container (and its host) when its last key went. */
  private track(key: string): { id: string; host: string } | undefined {
    const parsed = parseKey(this.o.connection.prefix, key);
    if (parsed?.kind !== 'http') return undefined;
    const id = `${parsed.host}/${parsed.id}`;
    this.cache.delete(id);
    const set = this.keys.get(id) ?? new Set<string>();
    if (this.watch?.has(key)) set.add(key);
    else set.delete(key);
    if (set.size > 0) {
      this.keys.set(id, set);
      this.dead.delete(id);
      return undefined;
    }
    const had = this.keys.delete(id);
    return had ? { id, host: parsed.host } : undefined;
  }

  /** Container stopped (owner still there: retire) or host gone (drain)? One owner read per host and burst. */
  private async classify(gone: { id: string; host: string }): Promise<void> {
    let check = this.ownerChecks.get(gone.host);
    if (!check) {
      check = this.ownerExists(gone.host);
      this.ownerChecks.set(gone.host, check);
      void check.then((owner) => {
        this.ownerChecks.delete(gone.host);
        if (!owner)
          this.o.logger.warn(
            { host: gone.host },
            `etcd: host ${gone.host} is gone from the index with its owner key (its lease expired or its agent stopped): its servers drain`,
          );
      });
    }
    if (await check) this.dead.set(gone.id, Date.now());
    const old = Date.now() - 600_000;
    for (const [id, at] of this.dead) if (at < old) this.dead.delete(id);
  }

  /**
   * Whether `host`'s owner key is there. Asked just as etcd comes back, the first reads may still fail
   * (the client fails fast for a while after an outage): a few tries, about 2 s in all. Still unknown:
   * retire, the side that can never misroute, and say so.
   */
  private async ownerExists(host: string): Promise<boolean> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.reader!.ownerExists(host);
      } catch (err) {
        if (attempt >= 4 || this.abort.signal.aborted) {
          this.o.logger.warn(
            { host, err: errorMessage(err) },
            `etcd: cannot read whether host ${host} still publishes (${errorMessage(err)}): its gone servers are retired, not drained`,
          );
          return true;
        }
        await sleep(attempt * 350, this.abort.signal);
      }
    }
  }

  read(): { candidates: Candidate[]; notes: SkipNote[] } {
    const watch = this.watch;
    if (!watch) return { candidates: [], notes: [] };
    const results: Array<ReturnType<typeof etcdCandidate>> = [];
    for (const [id, keys] of this.keys) {
      let result = this.cache.get(id);
      if (!result) {
        const group = [...keys].flatMap((k) => watch.route(k) ?? []);
        if (group.length === 0) continue;
        this.cache.set(id, (result = etcdCandidate(id, group)));
      }
      results.push(result);
    }
    return collect(results);
  }

  alive(containerId: string): boolean {
    // Before the first list nothing is known: nothing is retired on that account.
    return this.watch === undefined || this.keys.has(containerId) || !this.dead.has(containerId);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.reader?.close();
  }
}
