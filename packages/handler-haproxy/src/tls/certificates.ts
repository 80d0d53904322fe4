/**
 * The certificates HAProxy serves, kept in `tls-dir`: `default.pem` (the bind line's `crt`: served
 * to a client whose SNI names no certificate), `certs/<id>.pem` (one bundle each) and `crt-list`
 * (one line per bundle: SNI picks by the bundle's names). Sources (certs-dir, ACME) hand in their
 * bundles; every change is written to disk first (atomic, mode 0600) and then loaded through the
 * runtime API (`new/set/commit ssl cert`, `add/del ssl crt-list`), so a new or renewed certificate
 * needs no reload and a later reload or restart loads the very same files. Without the runtime API
 * (HAProxy not running yet, a command refused) the files are right and a reload is asked for.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, type Logger, readRegularFile } from '@glue/core';
import { runtimeCommand, socketPayloadCommand } from '../haproxy-io.js';
import { type CertBundle, covers, readBundle } from './pem.js';
import { selfSignedPem } from './self-signed.js';

export interface CertificatesOptions {
  tlsDir: string;
  /** The operator's default certificate file; undefined: a self-signed one is generated (and kept). */
  defaultCert: string | undefined;
  runtimeSocket: string;
  /** Whether HAProxy answers on the runtime socket with a config that has the HTTPS frontend. */
  runtimeReady: () => boolean;
  /** The files changed but the runtime API could not load them: the next apply reloads. */
  reloadSoon: (reason: string) => void;
  logger: Logger;
  handlerName: string;
}

/** A bundle a source hands in: `id` names its file (`certs/<id>.pem`); [a-z0-9._-] only. */
export interface ServedCert {
  id: string;
  bundle: CertBundle;
  /** Where it came from, for the log: `certs-dir /etc/glue/certs/a.pem`, `ACME`. */
  origin: string;
}

const ID = /^[a-z0-9][a-z0-9._-]{0,120}$/;

/** Writes `text` to `file` through a temp file beside it (mode 0600): readers see the old or the new file, never half. */
export async function writeAtomic(file: string, text: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode });
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}

export class Certificates {
  readonly crtList: string;
  readonly defaultPem: string;
  private readonly certsDir: string;
  /** Per source, its bundles by id. */
  private readonly sources = new Map<string, Map<string, ServedCert>>();
  /** What the files say (and HAProxy loaded, once synced): id -> fingerprint. */
  private readonly served = new Map<string, string>();
  private syncing: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly o: CertificatesOptions) {
    this.crtList = join(o.tlsDir, 'crt-list');
    this.defaultPem = join(o.tlsDir, 'default.pem');
    this.certsDir = join(o.tlsDir, 'certs');
  }

  /** Path HAProxy knows a bundle by. */
  pathOf(id: string): string {
    return join(this.certsDir, `${id}.pem`);
  }

  /**
   * Before HAProxy first loads the HTTPS frontend: the directory (0700), the default certificate, and
   * the crt-list with every bundle the sources handed in so far, so the first start serves them all.
   */
  async prepare(): Promise<void> {
    await mkdir(this.certsDir, { recursive: true, mode: 0o700 });
    await writeAtomic(this.defaultPem, await this.defaultText());
    const wanted = this.wanted();
    for (const [id, c] of wanted) await writeAtomic(this.pathOf(id), c.bundle.pem);
    await this.writeList(wanted);
    this.served.clear();
    for (const [id, c] of wanted) this.served.set(id, c.bundle.fingerprint);
    await this.sweep(wanted);
  }

  /** A source's whole set of bundles (replacing what it handed in before); applied in the background. */
  set(source: string, certs: readonly ServedCert[]): Promise<void> {
    this.stage(source, certs);
    return this.sync();
  }

  /** Records a source's set without applying it (before `prepare`, which writes them all). */
  stage(source: string, certs: readonly ServedCert[]): void {
    const map = new Map<string, ServedCert>();
    for (const c of certs) {
      if (!ID.test(c.id)) throw new Error(`certificate id ${JSON.stringify(c.id)} is not [a-z0-9._-] (internal error)`);
      map.set(c.id, c);
    }
    this.sources.set(source, map);
  }

  /** Whether a bundle of `source` covers `host`. */
  covered(source: string, host: string): boolean {
    for (const c of this.sources.get(source)?.values() ?? []) if (covers(c.bundle.names, host)) return true;
    return false;
  }

  /** The names some served bundle covers `host` with (exact or wildcard), or undefined: the default certificate answers it. */
  certFor(host: string): ServedCert | undefined {
    for (const c of this.wanted().values()) if (covers(c.bundle.names, host)) return c;
    return undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.syncing;
  }

  /** Bundles per source, and the earliest end of validity among them (metrics). */
  summary(): { bySource: Map<string, number>; earliestNotAfter: Date | undefined } {
    const bySource = new Map<string, number>();
    let earliest: Date | undefined;
    for (const [source, certs] of this.sources) {
      bySource.set(source, certs.size);
      for (const c of certs.values())
        if (earliest === undefined || c.bundle.notAfter < earliest) earliest = c.bundle.notAfter;
    }
    return { bySource, earliestNotAfter: earliest };
  }

  /**
   * Resolves when the files and HAProxy hold every bundle handed in so far. Never rejects: a change
   * that cannot be written (a full disk, tls-dir gone) is logged and tried again every 10 s.
   */
  sync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    clearTimeout(this.retry);
    this.syncing = (async () => {
      do {
        this.again = false;
        try {
          await this.syncOnce();
        } catch (err) {
          this.o.logger.error(
            { tlsDir: this.o.tlsDir, err: errorMessage(err) },
            `cannot write the certificates HAProxy loads to ${this.o.tlsDir}: ${errorMessage(err)}; the ones loaded keep serving, retrying in 10 s`,
          );
          if (!this.stopped) {
            this.retry = setTimeout(() => void this.sync(), 10_000);
            this.retry.unref();
          }
          return;
        }
      } while (this.again && !this.stopped);
    })().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private wanted(): Map<string, ServedCert> {
    const out = new Map<string, ServedCert>();
    for (const certs of this.sources.values()) for (const [id, c] of certs) out.set(id, c);
    return out;
  }

  private async syncOnce(): Promise<void> {
    const wanted = this.wanted();
    const added = [...wanted].filter(([id]) => !this.served.has(id));
    const changed = [...wanted].filter(
      ([id, c]) => this.served.has(id) && this.served.get(id) !== c.bundle.fingerprint,
    );
    const removed = [...this.served.keys()].filter((id) => !wanted.has(id));
    if (added.length + changed.length + removed.length === 0) return;
    // Files first: whatever happens to the runtime commands, a reload serves the same.
    for (const [id, c] of [...added, ...changed]) await writeAtomic(this.pathOf(id), c.bundle.pem);
    await this.writeList(wanted);
    /** The ids HAProxy took through the runtime API; the rest wait for the reload. */
    const live = new Set<string>();
    let reload = !(this.o.runtimeSocket !== '' && this.o.runtimeReady());
    if (!reload) {
      try {
        const listed = await this.listed();
        for (const [id, c] of added) {
          await this.load(id, c, !listed.has(this.pathOf(id)));
          live.add(id);
        }
        for (const [id, c] of changed) {
          await this.load(id, c, false);
          live.add(id);
        }
        for (const id of removed) {
          const sock = this.o.runtimeSocket;
          if (listed.has(this.pathOf(id)))
            await runtimeCommand(sock, `del ssl crt-list ${this.crtList} ${this.pathOf(id)}`, /deleted/i);
          await runtimeCommand(sock, `del ssl cert ${this.pathOf(id)}`, /deleted|unknown|not found/i);
          live.add(id);
        }
      } catch (err) {
        reload = true;
        this.o.logger.warn(
          { err: errorMessage(err) },
          `HAProxy did not take the certificate change through the runtime API (${errorMessage(err)}); reloading instead`,
        );
      }
    }
    if (reload) this.o.reloadSoon('certificates changed');
    this.served.clear();
    for (const [id, c] of wanted) this.served.set(id, c.bundle.fingerprint);
    for (const id of removed) await rm(this.pathOf(id), { force: true });
    const how = (id: string): string =>
      live.has(id) ? 'served through the runtime API, no reload' : 'written; served after the reload';
    for (const [id, c] of [...added, ...changed])
      this.o.logger.info(
        { cert: id, names: c.bundle.names, notAfter: c.bundle.notAfter.toISOString(), origin: c.origin },
        `certificate ${id} for ${c.bundle.names.join(', ')} (${c.origin}, valid until ${c.bundle.notAfter.toISOString()}) ${how(id)}`,
      );
    for (const id of removed) this.o.logger.info({ cert: id }, `certificate ${id} no longer served (${how(id)})`);
  }

  /** The certificate files HAProxy's crt-list holds now (a reload may have loaded some already). */
  private async listed(): Promise<Set<string>> {
    const text = await runtimeCommand(this.o.runtimeSocket, `show ssl crt-list ${this.crtList}`, /./s);
    const out = new Set<string>();
    for (const line of text.split('\n')) {
      const path = line.trim().split(/\s+/)[0];
      if (path && path.startsWith('/')) out.add(path.replace(/:\d+$/, ''));
    }
    return out;
  }

  /** One bundle into HAProxy: a new store entry (and its crt-list line), or a new version of one. */
  private async load(id: string, c: ServedCert, fresh: boolean): Promise<void> {
    const sock = this.o.runtimeSocket;
    const path = this.pathOf(id);
    if (fresh) await runtimeCommand(sock, `new ssl cert ${path}`, /New empty certificate store|already exists/i);
    const answer = await socketPayloadCommand(sock, `set ssl cert ${path}`, c.bundle.pem);
    if (!/Transaction (created|updated)/i.test(answer))
      throw new Error(`set ssl cert ${path} refused: ${answer.trim() || '(no answer)'}`);
    try {
      await runtimeCommand(sock, `commit ssl cert ${path}`, /Success!/);
    } catch (err) {
      await runtimeCommand(sock, `abort ssl cert ${path}`, /./s).catch(() => undefined);
      throw err;
    }
    if (fresh) await runtimeCommand(sock, `add ssl crt-list ${this.crtList} ${path}`, /Success!/);
  }

  private async writeList(wanted: ReadonlyMap<string, ServedCert>): Promise<void> {
    // The operator's files first: of two certificates for one name, HAProxy serves the first it loaded.
    const rank = (id: string): number => (id.startsWith('file-') ? 0 : 1);
    const ids = [...wanted.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
    const lines = ids.map((id) => `${this.pathOf(id)}\n`);
    await writeAtomic(this.crtList, lines.join(''), 0o644);
  }

  /** Removes bundles of an earlier run that no source hands in any more. */
  private async sweep(wanted: ReadonlyMap<string, ServedCert>): Promise<void> {
    const { readdir } = await import('node:fs/promises');
    for (const name of await readdir(this.certsDir).catch(() => [] as string[])) {
      const id = name.replace(/\.pem$/, '');
      if (name.endsWith('.pem') && !wanted.has(id)) await rm(join(this.certsDir, name), { force: true });
    }
  }

  /** The operator's default certificate (checked), or the one generated earlier, or a new self-signed one. */
  private async defaultText(): Promise<string> {
    if (this.o.defaultCert) {
      const file = this.o.defaultCert;
      const key = file.replace(/\.(pem|crt)$/, '.key');
      let keyText = '';
      if (key !== file) keyText = await readFile(key, 'utf8').catch(() => '');
      const r = readBundle(readRegularFile(file).toString('utf8'), keyText);
      if (!r.ok) throw new Error(`default-cert ${file} ${r.reason}`);
      return r.bundle.pem;
    }
    const existing = await readFile(this.defaultPem, 'utf8').catch(() => '');
    const r = existing ? readBundle(existing) : undefined;
    if (r?.ok && r.bundle.names.includes('glue-default-certificate.invalid')) return r.bundle.pem;
    this.o.logger.info(
      { file: this.defaultPem },
      `generated a self-signed default certificate ${this.defaultPem} (served when a client's SNI names no certificate; param default-cert names your own)`,
    );
    return selfSignedPem();
  }
}
