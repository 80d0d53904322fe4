/**
 * Certificates from an ACME CA (acme-client), HTTP-01 answered by HAProxy itself: each token and its
 * key authorization go into the challenge map (file first, then `add map` through the runtime API),
 * and the HTTP frontend returns it; no extra server. Only hosts that pass the hostname grammar (they
 * came through the label grammar) and the `acme-domains` allow-list are ever ordered: whoever starts a
 * container cannot make Glue ask a CA for any other name. Account key and certificates live in
 * `acme-storage` (0700, files 0600, written atomically); a certificate is renewed once a third of its
 * lifetime is left; a failure is logged with the CA's words and retried with backoff, and never stops
 * the HTTP routes.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { backoffDelay, errorMessage, type Logger, readRegularFile, sleep } from '@glue/core';
import { runtimeCommand } from '../haproxy-io.js';
import type { AcmeOptions } from '../options.js';
import { type ServedCert, writeAtomic } from './certificates.js';
import { type CertBundle, readBundle } from './pem.js';

type AcmeModule = typeof import('acme-client');

export interface AcmeIssuerOptions {
  acme: AcmeOptions;
  /** The challenge map HAProxy reads (`<token> <key authorization>`). */
  challengeMap: string;
  runtimeSocket: string;
  runtimeReady: () => boolean;
  /** Every certificate ACME holds, each time one is issued or renewed. */
  onCerts: (certs: ServedCert[]) => void;
  logger: Logger;
}

/** Whether `host` may be ordered: an exact entry, or under a `.suffix` entry. */
export function allowedByAcme(domains: readonly string[], host: string): boolean {
  return domains.some((d) => (d.startsWith('.') ? host.endsWith(d) && host.length > d.length : host === d));
}

/** Renew once a third of the lifetime is left. */
export function renewAt(bundle: Pick<CertBundle, 'notBefore' | 'notAfter'>): number {
  const life = bundle.notAfter.getTime() - bundle.notBefore.getTime();
  return bundle.notAfter.getTime() - life / 3;
}

/** A host as a file name: itself, or (a long one, to stay well under 255 bytes) its start and a hash. */
export function storedName(host: string): string {
  return host.length <= 100
    ? host
    : `${host.slice(0, 60)}-${createHash('sha256').update(host).digest('hex').slice(0, 16)}`;
}

/** The id of a host's certificate in the crt-list. */
export function acmeId(host: string): string {
  return `acme-${storedName(host)}`;
}

const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
const KEY_AUTH = /^[A-Za-z0-9_-]{1,256}\.[A-Za-z0-9_-]{1,256}$/;
const HOUR = 3_600_000;
const GONE_GRACE_MS = 10 * 60_000;

export class AcmeIssuer {
  /** Orders that ended with a certificate, and those that failed (metrics). */
  readonly counts = { issued: 0, failed: 0 };
  private acme: AcmeModule | undefined;
  private client: InstanceType<AcmeModule['Client']> | undefined;
  private readonly certs = new Map<string, CertBundle>();
  private wanted = new Set<string>();
  /**
   * When each host was last wanted. A certificate stays served for GONE_GRACE_MS after its host left
   * (or after start, for one stored by an earlier run): a restart, or a container replaced, never falls
   * back to the default certificate; one abandoned for good stops being served (and renewed).
   */
  private readonly lastWanted = new Map<string, number>();
  private readonly since = Date.now();
  private servedKey = '';
  /** Per host: failures in a row and when it may be tried again. */
  private readonly failures = new Map<string, { count: number; notBefore: number }>();
  private readonly refused = new Set<string>();
  /** token -> key authorization of the challenges in flight. */
  private readonly challenges = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private stopped = false;

  constructor(private readonly o: AcmeIssuerOptions) {}

  private get storage(): string {
    return this.o.acme.storage;
  }

  /** Loads the certificates stored by an earlier run (the valid ones are served at once). */
  async load(): Promise<ServedCert[]> {
    await mkdir(join(this.storage, 'certs'), { recursive: true, mode: 0o700 });
    for (const name of await readdir(join(this.storage, 'certs')).catch(() => [] as string[])) {
      if (!name.endsWith('.pem')) continue;
      const file = join(this.storage, 'certs', name);
      const r = readBundle(await readFile(file, 'utf8').catch(() => ''));
      // One name per ACME certificate, and the file is named after it.
      const host = r.ok && r.bundle.names.length === 1 ? r.bundle.names[0]! : '';
      if (r.ok && `${storedName(host)}.pem` === name) this.certs.set(host, r.bundle);
      else
        this.o.logger.warn(
          { file },
          `ACME: stored certificate ${file} ${r.ok ? 'is not one Glue stored for a single name' : r.reason}; its host is ordered again`,
        );
    }
    const certs = this.served();
    this.servedKey = certs.map((c) => `${c.id} ${c.bundle.fingerprint}`).join('\n');
    return certs;
  }

  /** The HTTPS hosts of the model: the allowed ones are ordered (or kept renewed); the others logged once. */
  want(hosts: readonly string[]): void {
    const next = new Set<string>();
    for (const h of hosts) {
      if (allowedByAcme(this.o.acme.domains, h)) next.add(h);
      else if (!this.refused.has(h)) {
        this.refused.add(h);
        this.o.logger.warn(
          { host: h },
          `ACME: ${h} is not in acme-domains: no certificate is requested for it (it is served with the default certificate unless certs-dir has one)`,
        );
      }
    }
    for (const h of this.refused) if (!hosts.includes(h)) this.refused.delete(h);
    const changed = next.size !== this.wanted.size || [...next].some((h) => !this.wanted.has(h));
    const now = Date.now();
    for (const h of this.wanted) if (!next.has(h)) this.lastWanted.set(h, now);
    this.wanted = next;
    if (changed) this.kick();
  }

  /** Orders and renewals begin (HAProxy runs: the challenges can be answered). */
  start(): void {
    this.started = true;
    this.kick();
  }

  /** Stops; an order in flight is left behind after 3 s (a CA that does not answer must not hold a shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.running) await Promise.race([this.running, sleep(3000)]);
  }

  /** Runs a round now (or right after the one running). */
  private kick(): void {
    if (this.stopped || !this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = (async () => {
      do {
        this.again = false;
        await this.round();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  /** Wakes up for the next renewal or retry. */
  private schedule(): void {
    if (this.stopped) return;
    const now = Date.now();
    let next = now + 12 * HOUR;
    for (const h of this.certs.keys())
      if (!this.wanted.has(h)) {
        const end = (this.lastWanted.get(h) ?? this.since) + GONE_GRACE_MS;
        if (end > now) next = Math.min(next, end);
      }
    for (const h of this.wanted) {
      const c = this.certs.get(h);
      const f = this.failures.get(h);
      next = Math.min(next, Math.max(f?.notBefore ?? 0, c ? renewAt(c) : now));
    }
    this.timer = setTimeout(() => this.kick(), Math.max(1000, Math.min(next - now, 2 ** 31 - 1)));
    this.timer.unref();
  }

  private async round(): Promise<void> {
    this.publish();
    for (const host of [...this.wanted].sort()) {
      if (this.stopped) return;
      const cert = this.certs.get(host);
      const now = Date.now();
      if (cert && renewAt(cert) > now) continue;
      if ((this.failures.get(host)?.notBefore ?? 0) > now) continue;
      try {
        const bundle = await this.issue(host);
        this.failures.delete(host);
        this.counts.issued += 1;
        this.certs.set(host, bundle);
        this.publish();
      } catch (err) {
        // The account may be gone at the CA (deactivated, a CA reset): register again next time.
        this.client = undefined;
        this.counts.failed += 1;
        const count = (this.failures.get(host)?.count ?? 0) + 1;
        const delay = backoffDelay(count, this.o.acme.retryMinMs, HOUR);
        this.failures.set(host, { count, notBefore: Date.now() + delay });
        const why = this.describe(err);
        this.o.logger.warn(
          { host, err: why, retryMs: delay, failures: count },
          `ACME: ${cert ? 'renewing' : 'ordering'} a certificate for ${host} failed: ${why}; ${cert ? 'the current one keeps serving' : 'the default certificate serves it meanwhile'}, retrying in ${Math.round(delay / 1000)} s`,
        );
      }
    }
  }

  /** The CA's words, or what kept Glue from reaching it. */
  private describe(err: unknown): string {
    const code = (err as { code?: unknown }).code;
    // acme-client 5.4 fails with a TypeError of its own when the CA cannot be reached at all.
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code))
      return `cannot reach the CA at ${this.o.acme.directory} (${code})`;
    if (err instanceof TypeError && /reading 'config'/.test(err.message))
      return `cannot reach the CA at ${this.o.acme.directory} (no answer)`;
    return errorMessage(err);
  }

  /** Hands the served set to onCerts when it changed. */
  private publish(): void {
    const certs = this.served();
    const key = certs.map((c) => `${c.id} ${c.bundle.fingerprint}`).join('\n');
    if (key === this.servedKey) return;
    this.servedKey = key;
    this.o.onCerts(certs);
  }

  /** The certificates of wanted hosts, and of hosts gone (or not seen since start) for less than GONE_GRACE_MS. */
  private served(): ServedCert[] {
    const now = Date.now();
    return [...this.certs]
      .filter(([h]) => this.wanted.has(h) || now - (this.lastWanted.get(h) ?? this.since) < GONE_GRACE_MS)
      .map(([host, bundle]) => ({ id: acmeId(host), bundle, origin: 'ACME' }));
  }

  /** One order for `host`, HTTP-01 through HAProxy; returns the checked bundle, stored. */
  private async issue(host: string): Promise<CertBundle> {
    const acme = await this.module();
    const client = await this.account();
    const started = Date.now();
    this.o.logger.info({ host }, `ACME: ordering a certificate for ${host} from ${this.o.acme.directory}`);
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: host }] });
    const tokens: string[] = [];
    try {
      for (const authz of await client.getAuthorizations(order)) {
        if (authz.status === 'valid') continue;
        const challenge = authz.challenges.find((c) => c.type === 'http-01');
        if (!challenge) throw new Error(`the CA offers no http-01 challenge for ${host}`);
        const keyAuth = await client.getChallengeKeyAuthorization(challenge);
        // Both come from the CA: only base64url tokens reach the map and the runtime socket.
        if (!TOKEN.test(challenge.token) || !KEY_AUTH.test(keyAuth))
          throw new Error('the CA sent a challenge token that is not base64url');
        tokens.push(challenge.token);
        await this.answer(challenge.token, keyAuth);
        await client.completeChallenge(challenge);
        await client.waitForValidStatus(challenge);
      }
      // A CN holds at most 64 characters: a longer name goes in the SAN alone.
      const [key, csr] = await acme.crypto.createCsr(
        host.length <= 64 ? { commonName: host, altNames: [host] } : { altNames: [host] },
      );
      const finalized = await client.finalizeOrder(order, csr);
      const chain = await client.getCertificate(finalized);
      const r = readBundle(chain, key.toString());
      if (!r.ok) throw new Error(`the certificate the CA issued ${r.reason}`);
      if (!r.bundle.names.includes(host)) throw new Error(`the certificate the CA issued does not name ${host}`);
      await writeAtomic(join(this.storage, 'certs', `${storedName(host)}.pem`), r.bundle.pem);
      this.o.logger.info(
        { host, notAfter: r.bundle.notAfter.toISOString(), ms: Date.now() - started },
        `ACME: issued a certificate for ${host} (valid until ${r.bundle.notAfter.toISOString()}, in ${Date.now() - started} ms)`,
      );
      return r.bundle;
    } finally {
      for (const t of tokens) await this.forget(t);
    }
  }

  /** The challenge answer into the map file, then into HAProxy (a reload meanwhile reads the file). */
  private async answer(token: string, keyAuth: string): Promise<void> {
    this.challenges.set(token, keyAuth);
    await this.writeMap();
    if (!this.o.runtimeSocket)
      throw new Error('HAProxy runs without the runtime API: an HTTP-01 answer cannot be added');
    // Right after a reload the new worker may take a moment to answer.
    for (let i = 0; i < 100 && !this.o.runtimeReady() && !this.stopped; i += 1) await sleep(100);
    await runtimeCommand(this.o.runtimeSocket, `add map ${this.o.challengeMap} ${token} ${keyAuth}`);
  }

  private async forget(token: string): Promise<void> {
    this.challenges.delete(token);
    await this.writeMap().catch(() => undefined);
    if (this.o.runtimeSocket && this.o.runtimeReady())
      await runtimeCommand(this.o.runtimeSocket, `del map ${this.o.challengeMap} ${token}`).catch(() => undefined);
  }

  private writeMap(): Promise<void> {
    const lines = [...this.challenges].map(([t, k]) => `${t} ${k}\n`).join('');
    return writeAtomic(this.o.challengeMap, lines, 0o644);
  }

  private async module(): Promise<AcmeModule> {
    if (this.acme) return this.acme;
    const mod = (await import('acme-client')) as AcmeModule & { default?: AcmeModule };
    const acme = mod.default ?? mod;
    // A CA that is down must not hold a round for minutes: few quick retries (the CA's Retry-After
    // on 429/503 is still honoured by acme-client), then Glue's own backoff per host.
    acme.axios.defaults.timeout = 30_000;
    const settings = (acme.axios.defaults as { acmeSettings?: Record<string, number> }).acmeSettings;
    if (settings) {
      settings.retryMaxAttempts = 2;
      settings.retryDefaultDelay = 2;
    }
    if (this.o.acme.caFile)
      acme.axios.defaults.httpsAgent = new Agent({ ca: readFileSync(this.o.acme.caFile, 'utf8'), keepAlive: true });
    this.acme = acme;
    return acme;
  }

  /** The account: its key from storage (or a new one, stored 0600), registered (or found) at the CA. */
  private async account(): Promise<InstanceType<AcmeModule['Client']>> {
    if (this.client) return this.client;
    const acme = await this.module();
    const keyFile = join(this.storage, 'account.key');
    let accountKey: string;
    try {
      accountKey = readRegularFile(keyFile).toString('utf8');
    } catch (err) {
      // Only a key that is not there is made anew: one that cannot be read is the account, kept.
      if ((err as { errno?: unknown }).errno !== 'ENOENT')
        throw new Error(`cannot read the ACME account key ${keyFile}: ${errorMessage(err)}`, { cause: err });
      accountKey = (await acme.crypto.createPrivateEcdsaKey()).toString();
      await writeAtomic(keyFile, accountKey);
      this.o.logger.info({ file: keyFile }, `ACME: created an account key ${keyFile}`);
    }
    const client = new acme.Client({
      directoryUrl: this.o.acme.directory,
      accountKey,
      ...(this.o.acme.eab ? { externalAccountBinding: this.o.acme.eab } : {}),
    });
    await client.createAccount({
      termsOfServiceAgreed: true,
      ...(this.o.acme.email ? { contact: [`mailto:${this.o.acme.email}`] } : {}),
    });
    this.client = client;
    return client;
  }
}
