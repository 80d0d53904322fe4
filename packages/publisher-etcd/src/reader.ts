import { backoffDelay, sleep } from '@glue/core';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { type ClientSettings, createEtcdClient } from './client.js';
import { DEFAULT_PREFIX, hostsPrefix, httpPrefix, normalizePrefix, ownerKey, parseKey, prefixEnd } from './keys.js';
import {
  type ContainerRecord,
  containerRecordSchema,
  type HttpEntry,
  httpEntrySchema,
  type OwnerRecord,
  ownerRecordSchema,
} from './schema.js';
import { checkHttpEntry } from './route-entry.js';

export interface ReaderOptions {
  /** `host:port` or URLs; default `127.0.0.1:2379`. Ignored when `client` is given. */
  endpoints?: string | string[];
  /** The publisher's `prefix`; default `/glue`. */
  prefix?: string;
  /** An etcd3 client of your own (the reader then does not close it). */
  client?: Etcd3;
  auth?: ClientSettings['auth'];
  tls?: ClientSettings['tls'];
}

interface Tracked<T> {
  value: T;
  modRevision: string;
  createRevision: string;
}

/** One index entry a route watch holds: its key, the checked entry, and when it was created (etcd revision). */
export interface IndexedRoute {
  key: string;
  entry: HttpEntry;
  /** The revision that created the key: lower means published earlier (a route's oldest server decides conflicts). */
  createRevision: number;
}

export interface RouteWatch {
  /** Every valid index entry now, kept current by the watch. */
  routes(): IndexedRoute[];
  /** Whether the watch holds this key now. */
  has(key: string): boolean;
  /** The entry the watch holds at `key` now. */
  route(key: string): IndexedRoute | undefined;
  close(): Promise<void>;
}

export interface RouteWatchOptions {
  /** A key whose entry came, changed or went (the view is already updated). */
  onChange?: (key: string) => void;
  /** An entry that fails checkHttpEntry (left out; `key` names it), or a watch etcd cancelled (recovers by itself). */
  onError?: (err: Error, key?: string) => void;
  /** The watch stream to etcd was lost (false) or is back (true). */
  onConnection?: (up: boolean) => void;
}

/** A change seen by a watch. */
export type ContainerChange =
  { type: 'put'; key: string; record: ContainerRecord } | { type: 'delete'; key: string; host: string; id: string };

export interface ContainerWatch {
  /** Every published container now, kept current by the watch. */
  containers(): ContainerRecord[];
  /** The containers of one host now. */
  byHost(host: string): ContainerRecord[];
  close(): Promise<void>;
}

export interface WatchOptions {
  onChange?: (change: ContainerChange) => void;
  /**
   * A value that is not a valid record (skipped), or a watch etcd cancelled (e.g. its revision was
   * compacted after a long disconnect). The watch recovers by itself: it lists again, reports the
   * difference through `onChange` and watches on.
   */
  onError?: (err: Error, key?: string) => void;
}

/**
 * Reads what publishers wrote: list the containers (all, or one host's), find the containers serving
 * an HTTP virtual host through the index, watch for changes. Values are validated; foreign or broken
 * values are skipped, never returned.
 */
export class Reader {
  readonly prefix: string;
  private readonly client: Etcd3;
  private readonly ownsClient: boolean;
  /** close() of every open watch. */
  private readonly watches = new Set<() => Promise<void>>();

  constructor(options: ReaderOptions = {}) {
    this.prefix = normalizePrefix(options.prefix ?? DEFAULT_PREFIX);
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      const raw = options.endpoints ?? '127.0.0.1:2379';
      const list = (Array.isArray(raw) ? raw : raw.split(',')).map((s) => s.trim()).filter(Boolean);
      const scheme = options.tls ? 'https' : 'http';
      const endpoints = list.map((e) => (/^[a-z]+:\/\//i.test(e) ? e : `${scheme}://${e}`));
      this.client = createEtcdClient({ endpoints, auth: options.auth, tls: options.tls });
      this.ownsClient = true;
    }
  }

  /** Published containers, of every host or of one. */
  async containers(options: { host?: string } = {}): Promise<ContainerRecord[]> {
    const { kvs } = await this.range(hostsPrefix(this.prefix));
    const out: ContainerRecord[] = [];
    for (const kv of kvs) {
      const parsed = parseKey(this.prefix, kv.key.toString());
      if (parsed?.kind !== 'container' || (options.host !== undefined && parsed.host !== options.host)) continue;
      const record = parseValue(containerRecordSchema, kv);
      if (record) out.push(record);
    }
    return out;
  }

  /** The containers that serve HTTP virtual host `vhost`, from the index (one range read). */
  async serving(vhost: string): Promise<HttpEntry[]> {
    const { kvs } = await this.range(httpPrefix(this.prefix, vhost));
    const out: HttpEntry[] = [];
    for (const kv of kvs) {
      const entry = parseValue(httpEntrySchema, kv);
      if (entry && entry.vhost === vhost.toLowerCase()) out.push(entry);
    }
    return out;
  }

  /** The HTTP virtual hosts that have at least one container. */
  async vhosts(): Promise<string[]> {
    const { kvs } = await this.range(httpPrefix(this.prefix), true);
    const names = new Set<string>();
    for (const kv of kvs) {
      const parsed = parseKey(this.prefix, kv.key.toString());
      if (parsed?.kind === 'http') names.add(parsed.vhost);
    }
    return [...names].sort();
  }

  /** The agents publishing now (one owner record per host). */
  async hosts(): Promise<OwnerRecord[]> {
    const { kvs } = await this.range(hostsPrefix(this.prefix));
    const out: OwnerRecord[] = [];
    for (const kv of kvs) {
      if (parseKey(this.prefix, kv.key.toString())?.kind !== 'owner') continue;
      const record = parseValue(ownerRecordSchema, kv);
      if (record) out.push(record);
    }
    return out;
  }

  /**
   * Lists the containers and then follows every change from that revision on, so nothing falls
   * between the list and the watch. `containers()` of the result is always current: the etcd client
   * resumes the watch after a disconnect by itself, and when etcd cancels it (its revision was
   * compacted during a long disconnect, or etcd dropped it) the reader reports the cancel through
   * `onError`, lists again, reports what changed meanwhile through `onChange` and watches on from the
   * new revision (retrying with backoff while etcd is unreachable).
   */
  async watch(options: WatchOptions = {}): Promise<ContainerWatch> {
    const { live, close } = await this.follow<ContainerRecord>(
      hostsPrefix(this.prefix),
      (key, kv) => {
        const parsed = parseKey(this.prefix, key);
        if (parsed?.kind !== 'container') return undefined;
        const record = parseValue(containerRecordSchema, kv);
        return record ? { value: record } : { reason: 'is not a valid container record' };
      },
      {
        put: (key, record) => options.onChange?.({ type: 'put', key, record }),
        delete: (key, record) => {
          const parsed = parseKey(this.prefix, key);
          const host = record?.host ?? (parsed?.kind === 'container' ? parsed.host : '');
          const id = record?.id ?? (parsed?.kind === 'container' ? parsed.id : '');
          options.onChange?.({ type: 'delete', key, host, id });
        },
        error: (err, key) => options.onError?.(err, key),
      },
    );
    const all = (): ContainerRecord[] => [...live.values()].map((v) => v.value);
    return { containers: all, byHost: (host) => all().filter((r) => r.host === host), close };
  }

  /**
   * What a balancer routes by: the HTTP index, listed and then watched like `watch()` (same recovery).
   * Every entry is checked as untrusted input (checkHttpEntry): a bad one is reported through
   * `onError` with its key and left out, and an entry overwritten with a bad value is removed.
   * `onChange` fires once per key that changed (the caller coalesces); `onConnection` tells when the
   * watch stream to etcd is lost and back (the routes held meanwhile stay as they were).
   */
  async watchRoutes(options: RouteWatchOptions = {}): Promise<RouteWatch> {
    const { live, close } = await this.follow<HttpEntry>(
      httpPrefix(this.prefix),
      (key, kv) => {
        const checked = checkHttpEntry(this.prefix, key, kv.value.toString());
        return checked.ok ? { value: checked.entry } : { reason: checked.reason };
      },
      {
        put: (key) => options.onChange?.(key),
        delete: (key) => options.onChange?.(key),
        error: (err, key) => options.onError?.(err, key),
        connection: (up) => options.onConnection?.(up),
      },
    );
    return {
      routes: () => [...live].map(([key, v]) => ({ key, entry: v.value, createRevision: Number(v.createRevision) })),
      has: (key) => live.has(key),
      route: (key) => {
        const v = live.get(key);
        return v ? { key, entry: v.value, createRevision: Number(v.createRevision) } : undefined;
      },
      close,
    };
  }

  /**
   * The list-then-watch engine behind watch() and watchRoutes(): `read` turns a key and its value into
   * a value to track, a reason it is invalid, or undefined for keys it does not track.
   */
  private async follow<T>(
    base: string,
    read: (key: string, kv: IKeyValue) => { value: T } | { reason: string } | undefined,
    on: {
      put: (key: string, value: T) => void;
      delete: (key: string, previous: T | undefined) => void;
      error: (err: Error, key?: string) => void;
      connection?: (up: boolean) => void;
    },
  ): Promise<{ live: Map<string, Tracked<T>>; close: () => Promise<void> }> {
    const live = new Map<string, Tracked<T>>();
    const abort = new AbortController();
    let watcher: Watcher | undefined;
    let recovering: Promise<void> | undefined;
    // The first list builds the view without reporting: the caller reads it when the promise resolves.
    let quiet = true;
    const put = (key: string, value: T): void => {
      if (!quiet) on.put(key, value);
    };
    const drop = (key: string, value: T): void => {
      if (!quiet) on.delete(key, value);
    };
    const invalid = (key: string, reason: string): void =>
      on.error(new Error(`skipped ${key}: its value ${reason}`), key);

    /** Stops tracking `key` (if it was), reporting its delete. */
    const forget = (key: string): void => {
      const before = live.get(key);
      if (!before) return;
      live.delete(key);
      drop(key, before.value);
    };

    /** Takes one key's value in: tracked (and reported) if valid and new, forgotten if invalid. */
    const take = (kv: IKeyValue): void => {
      const key = kv.key.toString();
      const got = read(key, kv);
      if (got === undefined) return;
      if ('reason' in got) {
        invalid(key, got.reason);
        forget(key);
        return;
      }
      if (live.get(key)?.modRevision === kv.mod_revision) return;
      live.set(key, { value: got.value, modRevision: kv.mod_revision, createRevision: kv.create_revision });
      put(key, got.value);
    };

    /** Lists again and reports the difference to what the watch held; returns the list's revision. */
    const relist = async (): Promise<string> => {
      const { kvs, revision } = await this.range(base);
      const seen = new Set<string>();
      for (const kv of kvs) {
        take(kv);
        seen.add(kv.key.toString());
      }
      for (const [key, { value }] of [...live]) {
        if (seen.has(key)) continue;
        live.delete(key);
        drop(key, value);
      }
      return revision;
    };

    const watchFrom = async (revision: string): Promise<void> => {
      const w = await this.client
        .watch()
        .prefix(base)
        .startRevision(String(BigInt(revision) + 1n))
        .create();
      if (abort.signal.aborted) {
        await w.cancel().catch(() => undefined);
        return;
      }
      watcher = w;
      w.on('put', take);
      w.on('delete', (kv) => forget(kv.key.toString()));
      w.on('disconnected', () => on.connection?.(false));
      w.on('connected', () => on.connection?.(true));
      // etcd3 emits `error` on a watcher only when etcd cancelled it; the client then forgets it.
      w.on('error', (err: Error) => {
        if (watcher !== w || abort.signal.aborted) return;
        watcher = undefined;
        for (const name of ['put', 'delete', 'connected', 'disconnected']) w.removeAllListeners(name);
        on.error(
          new Error(`watch on ${base} cancelled by etcd (${err.message}); listing again and watching on`, {
            cause: err,
          }),
        );
        recovering ??= recover().finally(() => (recovering = undefined));
      });
    };

    const recover = async (): Promise<void> => {
      for (let attempt = 0; !abort.signal.aborted; attempt += 1) {
        try {
          await watchFrom(await relist());
          return;
        } catch (err) {
          if (abort.signal.aborted) return;
          on.error(
            new Error(`watch on ${base}: cannot list and watch again (${(err as Error).message}); retrying`, {
              cause: err,
            }),
          );
          await sleep(backoffDelay(attempt, 200, 5000), abort.signal);
        }
      }
    };

    await watchFrom(await relist());
    quiet = false;
    const close = async (): Promise<void> => {
      abort.abort();
      this.watches.delete(close);
      const w = watcher;
      watcher = undefined;
      await w?.cancel().catch(() => undefined);
    };
    this.watches.add(close);
    return { live, close };
  }

  /** Whether `host`'s agent publishes now (its owner key is there: its lease has not expired or been revoked). */
  async ownerExists(host: string): Promise<boolean> {
    const res = await this.client.kv.range({ key: Buffer.from(ownerKey(this.prefix, host)), count_only: true });
    return Number(res.count) > 0;
  }

  /** Cancels the watches and closes the client if the reader made it. */
  async close(): Promise<void> {
    await Promise.all([...this.watches].map((close) => close()));
    if (this.ownsClient) this.client.close();
  }

  private async range(prefix: string, keysOnly = false): Promise<{ kvs: IKeyValue[]; revision: string }> {
    const kvs: IKeyValue[] = [];
    const end = prefixEnd(prefix);
    let from = Buffer.from(prefix);
    let revision: string | undefined;
    for (;;) {
      const res = await this.client.kv.range({
        key: from,
        range_end: end,
        limit: 1000,
        keys_only: keysOnly,
        ...(revision ? { revision } : {}),
      });
      revision ??= res.header.revision;
      kvs.push(...res.kvs);
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || last === undefined) return { kvs, revision };
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }
}

function parseValue<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
  kv: IKeyValue,
): T | undefined {
  try {
    const result = schema.safeParse(JSON.parse(kv.value.toString()));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}
