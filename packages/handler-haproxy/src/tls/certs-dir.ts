/**
 * `certs-dir`: the operator's PEM files (`*.pem` or `*.crt`: certificate and chain, key inside or in
 * `<name>.key` beside), read, checked (pem.ts) and watched. A file that fails its checks is refused
 * with one line naming it and why, and the version of it that was serving keeps serving.
 */
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { errorMessage, type Logger, readRegularFile } from '@glue/core';
import type { ServedCert } from './certificates.js';
import { readBundle } from './pem.js';

export interface CertsDirOptions {
  dir: string;
  logger: Logger;
  /** The whole set, each time it changed. */
  onChange: (certs: ServedCert[]) => void;
  /** Rescan this often besides watching (a watch misses changes on some filesystems). Default 30 s. */
  pollMs?: number;
}

/** `Example.COM.pem` -> `file-example.com`: a crt-list-safe id, prefixed so no other source collides. */
export function fileId(name: string): string {
  const base = name
    .replace(/\.(pem|crt)$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-');
  return `file-${base.replace(/^[._-]+/, '') || 'cert'}`.slice(0, 120);
}

export class CertsDir {
  /** The last good bundle per file id. */
  private readonly good = new Map<string, ServedCert>();
  /** The last refusal logged per file (its reason and size+mtime), so a bad file is reported once per change. */
  private readonly refused = new Map<string, string>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastKey = '';

  constructor(private readonly o: CertsDirOptions) {}

  /** Reads the directory now; returns the bundles to serve (the good ones, and the last good version of a refused file). */
  scan(): ServedCert[] {
    let names: string[];
    try {
      names = readdirSync(this.o.dir);
    } catch (err) {
      this.o.logger.warn(
        { certsDir: this.o.dir, err: errorMessage(err) },
        `certs-dir ${this.o.dir} cannot be read (${errorMessage(err)}): the certificates it gave keep serving`,
      );
      return [...this.good.values()];
    }
    const seen = new Set<string>();
    for (const name of names.sort()) {
      if (name.startsWith('.') || !/\.(pem|crt)$/i.test(name)) continue;
      const file = join(this.o.dir, name);
      const id = fileId(name);
      if (seen.has(id)) {
        this.refuse(file, `names the same certificate as another file (${id}); rename one`);
        continue;
      }
      seen.add(id);
      let stamp = '';
      let result: ReturnType<typeof readBundle>;
      try {
        const st = statSync(file);
        stamp = `${st.size} ${st.mtimeMs}`;
        const text = readRegularFile(file).toString('utf8');
        const keyFile = file.replace(/\.(pem|crt)$/i, '.key');
        let keyText = '';
        try {
          keyText = readRegularFile(keyFile).toString('utf8');
        } catch {
          // no key beside it: it must be inside
        }
        result = readBundle(text, keyText);
      } catch (err) {
        result = { ok: false, reason: `cannot be read: ${errorMessage(err)}` };
      }
      if (result.ok) {
        this.refused.delete(file);
        this.good.set(id, { id, bundle: result.bundle, origin: `certs-dir ${file}` });
      } else {
        this.refuse(file, result.reason, stamp, this.good.has(id));
      }
    }
    // A file removed from the directory is no longer served.
    for (const id of this.good.keys()) if (!seen.has(id)) this.good.delete(id);
    return [...this.good.values()];
  }

  /** Scans, hands the set to onChange, then watches the directory and rescans on changes and every pollMs. */
  start(): void {
    this.rescan(true);
    try {
      this.watcher = watch(this.o.dir, () => {
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => this.rescan(false), 200);
      });
      this.watcher.on('error', () => undefined);
    } catch (err) {
      this.o.logger.warn(
        { certsDir: this.o.dir, err: errorMessage(err) },
        `certs-dir ${this.o.dir} cannot be watched (${errorMessage(err)}): rescanned every ${(this.o.pollMs ?? 30_000) / 1000} s`,
      );
    }
    this.timer = setInterval(() => this.rescan(false), this.o.pollMs ?? 30_000);
    this.timer.unref();
  }

  stop(): void {
    this.watcher?.close();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
  }

  private rescan(always: boolean): void {
    const certs = this.scan();
    const key = certs.map((c) => `${c.id} ${c.bundle.fingerprint}`).join('\n');
    if (!always && key === this.lastKey) return;
    this.lastKey = key;
    this.o.onChange(certs);
  }

  private refuse(file: string, reason: string, stamp = '', keeps = false): void {
    const mark = `${reason}\0${stamp}`;
    if (this.refused.get(file) === mark) return;
    this.refused.set(file, mark);
    this.o.logger.warn(
      { file, reason },
      `certs-dir: ${file} ${reason}; not served${keeps ? ' (its previous version keeps serving)' : ''}`,
    );
  }
}
