import { hostname } from 'node:os';
import { backoffDelay, type Logger, sleep } from '@glue/core';
import type { Etcd3, IKeyValue, IRequestOp } from 'etcd3';
import {
  CREDENTIAL_LOG_EVERY_MS,
  credentialProblem,
  describeEtcdError,
  HostConflictError,
  isLeaseNotFound,
  LeaseLostError,
} from './etcd-errors.js';
import { hostPrefix, httpPrefix, ownerKey, parseKey, prefixEnd } from './keys.js';
import { LeaseKeeper } from './lease-keeper.js';
import { type OwnerRecord, ownerRecordSchema, RECORD_VERSION } from './schema.js';
import { batches, MAX_TXN_OPS, planChanges, planReconcile, type StoredKey } from './txn-plan.js';

export { CREDENTIAL_LOG_EVERY_MS, credentialProblem, HostConflictError } from './etcd-errors.js';
export { MAX_TXN_BYTES, MAX_TXN_OPS } from './txn-plan.js';

const PAGE = 1000;
const OWNER = '\0owner';

export type SyncState = 'starting' | 'up' | 'down' | 'stopped';

export interface SyncOptions {
  client: Etcd3;
  prefix: string;
  host: string;
  ttlSeconds: number;
  logger: Logger;
  /** The engine this agent publishes (written in the owner record, used to tell a restart from a rival). */
  engine: () => { id: string; name: string } | undefined;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Deadline of one etcd call. Default 5 s. */
  callTimeoutMs?: number;
  /** Full reconcile this often, events or not (0 or absent: never). */
  resyncMs?: number;
  /** For the credential error line: the endpoints, the etcd user and the INI file that names them. */
  endpoints?: readonly string[];
  user?: string | undefined;
  configFile?: string;
}

export interface SyncStats {
  puts: number;
  deletes: number;
  txns: number;
}

interface Waiter {
  target: number;
  /** Keeps waiting through failed writes (until its timeout or the stop). */
  patient: boolean;
  resolve: (synced: boolean) => void;
}

/**
 * Keeps etcd equal to a desired set of keys owned by one host, on one lease.
 *
 * Level-triggered: callers only change the desired state (per container); a single loop writes the
 * difference in transactions. A failed write is never lost: the loop marks everything for a full
 * reconcile (read this host's keys back, put what differs, delete what is left over) and retries with
 * backoff, so after an outage the keys match the desired state exactly. Every transaction is guarded
 * by the owner key still being on our lease, so nothing is written on a lease that expired meanwhile.
 */
export class EtcdSync {
  readonly host: string;
  private readonly o: SyncOptions;
  private readonly client: Etcd3;
  private readonly desired = new Map<string, Map<string, string>>();
  private readonly applied = new Map<string, Map<string, string>>();
  private readonly dirty = new Set<string>();
  private readonly abort = new AbortController();
  private readonly instance = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
  private needReconcile = true;
  private readonly keeper: LeaseKeeper;
  private changes = 0;
  private synced = 0;
  private waiters: Waiter[] = [];
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private downSince = 0;
  private stopping: Promise<void> | undefined;
  private credentialLogged: { problem: string; at: number } | undefined;
  state: SyncState = 'starting';
  /** Why the last write or reconcile failed (plain words), until one succeeds again. */
  lastError: string | undefined;
  /** etcd's words while it refuses our credentials (`authentication failed…`, `permission denied`), else undefined. */
  credentialError: string | undefined;
  /** Totals since start, for logs and benchmarks. */
  readonly totals: SyncStats = { puts: 0, deletes: 0, txns: 0 };
  /** Called after each successful pass (tests, benchmarks). */
  onSynced: ((stats: SyncStats & { full: boolean }) => void) | undefined;

  constructor(options: SyncOptions) {
    this.o = options;
    this.client = options.client;
    this.host = options.host;
    this.keeper = new LeaseKeeper({
      client: options.client,
      ttlSeconds: options.ttlSeconds,
      callTimeoutMs: this.callTimeout,
      logger: options.logger,
      onNeedReconcile: () => this.requestReconcile(),
    });
  }

  /** The lease all keys hang on (decimal string), once granted. */
  get leaseId(): string | undefined {
    return this.keeper.id;
  }

  /** The lease's counts since start (grants, renewals, losses, failed keepalives). */
  get leaseCounts(): Readonly<LeaseKeeper['counts']> {
    return this.keeper.counts;
  }

  /** Number of keys wanted, owner key included. */
  get size(): number {
    let n = 1;
    for (const m of this.desired.values()) n += m.size;
    return n;
  }

  /** Sets the keys of one container (undefined or empty: it has none). */
  set(id: string, entries: Map<string, string> | undefined): void {
    if (entries === undefined || entries.size === 0) {
      if (!this.desired.has(id)) return;
      this.desired.delete(id);
    } else {
      this.desired.set(id, entries);
    }
    this.dirty.add(id);
    this.changes += 1;
    this.kick();
  }

  /** Replaces the whole desired state and asks for a full reconcile against etcd. */
  replaceAll(all: Map<string, Map<string, string>>): void {
    for (const id of [...this.desired.keys()]) if (!all.has(id)) this.desired.delete(id);
    for (const [id, entries] of all) {
      if (entries.size === 0) this.desired.delete(id);
      else this.desired.set(id, entries);
    }
    this.requestReconcile();
  }

  /** Reads this host's keys back from etcd and repairs every difference (start-up, reconnects). */
  requestReconcile(): void {
    this.needReconcile = true;
    this.changes += 1;
    this.kick();
  }

  /**
   * Resolves true once every change made before the call is in etcd; false at once when etcd is down
   * (unless `throughOutages`: then it keeps waiting while the loop retries), after `timeoutMs`, on stop,
   * or when `signal` aborts. The change stays queued either way.
   */
  flushed(timeoutMs: number, signal?: AbortSignal, options: { throughOutages?: boolean } = {}): Promise<boolean> {
    const target = this.changes;
    const patient = options.throughOutages === true;
    if (this.synced >= target) return Promise.resolve(true);
    if ((this.state === 'down' && !patient) || this.state === 'stopped' || timeoutMs <= 0 || signal?.aborted)
      return Promise.resolve(false);
    return new Promise((resolve) => {
      let done = false;
      const finish = (value: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(value);
      };
      const onAbort = (): void => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      const waiter: Waiter = { target, patient, resolve: finish };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
    const every = Math.max(500, Math.floor((this.o.ttlSeconds * 1000) / 3));
    this.keepaliveTimer = setInterval(() => void this.keepalive(), every);
    this.keepaliveTimer.unref();
    if ((this.o.resyncMs ?? 0) > 0) {
      this.resyncTimer = setInterval(() => this.requestReconcile(), this.o.resyncMs);
      this.resyncTimer.unref();
    }
  }

  /**
   * Stops writing. With `revoke`, revokes the lease so every key of this agent goes at once; without,
   * the keys stay until the TTL runs out. Idempotent; bounded even when etcd is down.
   */
  stop(revoke: boolean): Promise<void> {
    this.stopping ??= this.doStop(revoke);
    return this.stopping;
  }

  private async doStop(revoke: boolean): Promise<void> {
    this.abort.abort();
    clearInterval(this.keepaliveTimer);
    clearInterval(this.resyncTimer);
    this.kick();
    await this.loop;
    this.state = 'stopped';
    this.settleWaiters(false);
    const lease = this.keeper.id;
    if (!revoke || lease === undefined) {
      if (lease !== undefined)
        this.o.logger.info(
          { lease },
          `etcd: keys of ${this.host} stay until the lease expires (${this.o.ttlSeconds} s)`,
        );
      return;
    }
    try {
      await this.keeper.revoke(lease);
      this.o.logger.info({ lease }, `etcd: lease revoked, keys of ${this.host} deleted`);
    } catch (err) {
      this.o.logger.warn(
        { lease, err: describeEtcdError(err) },
        `etcd: cannot revoke the lease (${describeEtcdError(err)}); the keys of ${this.host} expire after ${this.o.ttlSeconds} s`,
      );
    }
  }

  private get callTimeout(): number {
    return this.o.callTimeoutMs ?? 5000;
  }

  private kick(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private settleWaiters(ok: boolean): void {
    // resolve() removes the waiter from the list.
    for (const w of [...this.waiters]) {
      if (ok ? w.target <= this.synced : !w.patient || this.state === 'stopped') w.resolve(ok);
    }
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let failures = 0;
    while (!signal.aborted) {
      if (!this.needReconcile && this.dirty.size === 0 && this.keeper.id !== undefined) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        continue;
      }
      const target = this.changes;
      try {
        const full = this.needReconcile || this.keeper.id === undefined;
        const stats = full ? await this.reconcile() : await this.applyDirty();
        this.synced = Math.max(this.synced, target);
        this.totals.puts += stats.puts;
        this.totals.deletes += stats.deletes;
        this.totals.txns += stats.txns;
        if (this.state === 'down' && this.credentialError !== undefined) {
          const secs = ((Date.now() - this.downSince) / 1000).toFixed(1);
          this.o.logger.info(
            { ...stats, downSeconds: Number(secs), user: this.o.user },
            `etcd: credentials accepted again after ${secs} s; ${this.host} reconciled (${stats.puts} put, ${stats.deletes} deleted)`,
          );
        } else if (this.state === 'down') {
          const secs = ((Date.now() - this.downSince) / 1000).toFixed(1);
          this.o.logger.info(
            { ...stats, downSeconds: Number(secs) },
            `etcd: reachable again after ${secs} s; ${this.host} reconciled (${stats.puts} put, ${stats.deletes} deleted)`,
          );
        } else if (full) {
          this.o.logger.info(
            { ...stats, keys: this.size },
            `etcd: ${this.host} reconciled (${stats.puts} put, ${stats.deletes} deleted, ${this.size} keys)`,
          );
        }
        this.state = 'up';
        this.lastError = undefined;
        this.credentialError = undefined;
        this.credentialLogged = undefined;
        failures = 0;
        this.settleWaiters(true);
        this.onSynced?.({ ...stats, full });
      } catch (err) {
        if (signal.aborted) break;
        this.needReconcile = true;
        if (err instanceof LeaseLostError || isLeaseNotFound(err)) {
          this.o.logger.warn(
            { lease: this.keeper.id },
            `etcd: lease ${this.keeper.id} lost; granting a new one and publishing again`,
          );
          this.keeper.id = undefined;
        }
        const credentials = credentialProblem(err);
        // Wrong credentials are not an outage: retrying fast does not help, so retry at backoff-max
        // (the password may be fixed on the etcd side without restarting Glue).
        const delay =
          credentials !== undefined
            ? (this.o.backoffMaxMs ?? 10_000)
            : backoffDelay(failures, this.o.backoffInitialMs ?? 200, this.o.backoffMaxMs ?? 10_000);
        if (this.state !== 'down') this.downSince = Date.now();
        this.credentialError = credentials;
        this.lastError = credentials ?? describeEtcdError(err);
        if (credentials !== undefined) {
          this.logCredentials(credentials, delay);
        } else if (this.state !== 'down' && err instanceof HostConflictError) {
          this.o.logger.error({ retryMs: delay }, `etcd: ${err.message}; publishing nothing, retrying with backoff`);
        } else if (this.state !== 'down' || this.credentialLogged !== undefined) {
          this.credentialLogged = undefined;
          this.o.logger.warn(
            { err: describeEtcdError(err), retryMs: delay },
            `etcd: cannot publish ${this.host}: ${describeEtcdError(err)}; Glue keeps running, retrying with backoff (changes are kept)`,
          );
        } else {
          this.o.logger.debug({ err: describeEtcdError(err), retryMs: delay, failures }, 'etcd: still unreachable');
        }
        this.state = 'down';
        this.settleWaiters(false);
        failures += 1;
        await sleep(delay, signal);
      }
    }
  }

  /**
   * One error line naming the endpoints, the user, etcd's words and where to fix it; repeated at most
   * once per CREDENTIAL_LOG_EVERY_MS while etcd's answer stays the same, at once when it changes.
   */
  private logCredentials(problem: string, retryMs: number): void {
    const now = Date.now();
    const last = this.credentialLogged;
    if (last !== undefined && last.problem === problem && now - last.at < CREDENTIAL_LOG_EVERY_MS) {
      this.o.logger.debug({ err: problem, retryMs }, 'etcd: credentials still refused');
      return;
    }
    this.credentialLogged = { problem, at: now };
    const endpoints = (this.o.endpoints ?? []).join(',') || 'etcd';
    const user = this.o.user === undefined ? 'no user (user= is not set)' : `user ${JSON.stringify(this.o.user)}`;
    const where = this.o.configFile ?? 'the INI file';
    const hint = /permission denied/i.test(problem)
      ? `grant ${this.o.user === undefined ? 'the user' : JSON.stringify(this.o.user)} a role with readwrite on ${this.o.prefix}/ (etcdctl role grant-permission <role> --prefix=true readwrite ${this.o.prefix}/), or check user= in ${where} [params]`
      : `check user and password in ${where} [params]`;
    this.o.logger.error(
      { endpoints: this.o.endpoints, user: this.o.user, err: problem, retryMs },
      `etcd: ${endpoints} refused ${user}: ${problem}; ${hint}. Publishing nothing for ${this.host}; retrying every ${retryMs / 1000} s (fixing it on the etcd side needs no restart); this line repeats at most once a minute`,
    );
  }

  private ownerValue(): string {
    const engine = this.o.engine();
    const record: OwnerRecord = {
      v: RECORD_VERSION,
      host: this.host,
      engineId: engine?.id ?? '',
      engineName: engine?.name ?? '',
      hostname: hostname(),
      pid: process.pid,
      instance: this.instance,
      ttl: this.o.ttlSeconds,
    };
    return JSON.stringify(record);
  }

  /** Every key in [start, end), paged. */
  private async range(start: string, keysOnly: boolean): Promise<IKeyValue[]> {
    const out: IKeyValue[] = [];
    const end = prefixEnd(start);
    let from = Buffer.from(start);
    for (;;) {
      const res = await this.client.kv.range(
        { key: from, range_end: end, limit: PAGE, keys_only: keysOnly },
        { deadline: Date.now() + this.callTimeout },
      );
      out.push(...res.kvs);
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || last === undefined) return out;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  /** Values of the given keys, read in transactions of bounded size (missing keys are left out). */
  private async getMany(keys: Buffer[]): Promise<IKeyValue[]> {
    const out: IKeyValue[] = [];
    for (let i = 0; i < keys.length; i += MAX_TXN_OPS) {
      const batch = keys.slice(i, i + MAX_TXN_OPS);
      const res = await this.client.kv.txn(
        { compare: [], success: batch.map((key) => ({ request_range: { key } })), failure: [] },
        { deadline: Date.now() + this.callTimeout },
      );
      for (const r of res.responses) out.push(...(r.response_range?.kvs ?? []));
    }
    return out;
  }

  private async reconcile(): Promise<SyncStats> {
    this.dirty.clear();
    this.needReconcile = false;
    await this.keeper.dropIfExpired();
    const existing = new Map<string, IKeyValue>();
    for (const kv of await this.range(hostPrefix(this.o.prefix, this.host), false)) existing.set(kv.key.toString(), kv);
    // The index is ordered by virtual host: list its keys only, then read the values of ours.
    const ownIndex: Buffer[] = [];
    for (const kv of await this.range(httpPrefix(this.o.prefix), true)) {
      const parsed = parseKey(this.o.prefix, kv.key.toString());
      if (parsed?.kind === 'http' && parsed.host === this.host) ownIndex.push(kv.key);
    }
    for (const kv of await this.getMany(ownIndex)) existing.set(kv.key.toString(), kv);
    const oKey = ownerKey(this.o.prefix, this.host);
    const current = existing.get(oKey);
    if (current !== undefined && current.lease !== '0' && current.lease !== this.keeper.id)
      await this.checkRival(current);
    const lease = await this.keeper.ensure();

    // Snapshot of what we want now; later changes are in `dirty` for the next pass.
    const want = new Map<string, Map<string, string>>();
    want.set(OWNER, new Map([[oKey, this.ownerValue()]]));
    for (const [id, entries] of this.desired) want.set(id, entries);
    const stored = new Map<string, StoredKey>(
      [...existing].map(([key, kv]) => [key, { lease: kv.lease, value: kv.value?.toString() ?? '' }]),
    );
    const { ops, puts, deletes, ownerFirst } = planReconcile(stored, want.values(), oKey, lease);
    const txns = await this.commit(ops, lease, ownerFirst);
    this.applied.clear();
    for (const [id, entries] of want) this.applied.set(id, entries);
    return { puts, deletes, txns };
  }

  /** Another agent's owner record on another lease: ours after a crash (same engine), or a rival. */
  private async checkRival(kv: IKeyValue): Promise<void> {
    let other: OwnerRecord;
    try {
      other = ownerRecordSchema.parse(JSON.parse(kv.value.toString()));
    } catch {
      return; // not a record we wrote: take it over
    }
    const mine = this.o.engine()?.id ?? '';
    if (other.engineId === '' || mine === '' || other.engineId === mine) return;
    if (await this.keeper.alive(kv.lease).catch(() => false)) throw new HostConflictError(this.host, other);
    // Another engine's keys on a lease that is gone: ours now, but say so.
    this.o.logger.warn(
      { host: this.host, engine: other.engineName || other.engineId, hostname: other.hostname },
      `etcd: taking over host-id ${this.host} from engine ${other.engineName || other.engineId} (${other.hostname} pid ${other.pid}), whose lease expired`,
    );
  }

  private async applyDirty(): Promise<SyncStats> {
    const lease = this.keeper.id!;
    const ids = [...this.dirty];
    this.dirty.clear();
    const { ops, puts, deletes } = planChanges(ids, this.desired, this.applied, lease);
    let txns = 0;
    try {
      txns = await this.commit(ops, lease, false);
    } catch (err) {
      for (const id of ids) this.dirty.add(id);
      throw err;
    }
    for (const id of ids) {
      const want = this.desired.get(id);
      if (want === undefined) this.applied.delete(id);
      else this.applied.set(id, want);
    }
    return { puts, deletes, txns };
  }

  /**
   * Writes ops in transactions of bounded size. Each is guarded by the owner key being on `lease`,
   * except the first when it (re)writes the owner key itself.
   */
  private async commit(ops: IRequestOp[], lease: string, firstPutsOwner: boolean): Promise<number> {
    const oKey = Buffer.from(ownerKey(this.o.prefix, this.host));
    let txns = 0;
    for (const batch of batches(ops)) {
      const guarded = !(txns === 0 && firstPutsOwner);
      const res = await this.client.kv.txn(
        {
          compare: guarded ? [{ key: oKey, target: 'Lease', result: 'Equal', lease }] : [],
          success: batch,
          failure: [],
        },
        { deadline: Date.now() + this.callTimeout },
      );
      txns += 1;
      if (!res.succeeded) throw new LeaseLostError(lease);
    }
    return txns;
  }

  /** One lease keepalive (the timer runs it every TTL/3). */
  private async keepalive(): Promise<void> {
    if (this.abort.signal.aborted) return;
    await this.keeper.keepalive();
  }
}
