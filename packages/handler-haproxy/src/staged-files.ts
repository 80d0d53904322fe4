/**
 * The config file and its map files (host map, TLS map) on disk: written to temp files beside them, checked with
 * `haproxy -c`, renamed over the old ones (atomic), temp files never outliving a write; the last good
 * config of an earlier run; temp files that runs which are gone left behind.
 */
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { GlueError, type Logger } from '@glue/core';
import { claimFile, withMark } from './file-claim.js';
import { checkConfig } from './haproxy-io.js';

/** Checked temp files beside the config and map: `commit` renames them over the old ones, `discard` removes what is left. */
export interface Staged {
  commit: () => Promise<void>;
  discard: () => Promise<void>;
}

export interface StagedFilesOptions {
  configFile: string;
  /** Host map file ('' for none). */
  hostMap: string;
  /** TLS map file (`<host> <flags>` of the HTTPS hosts; '' without an HTTPS frontend). */
  tlsMap?: string;
  haproxyBin: string;
  checkTimeoutMs: number;
  handlerName: string;
  logger: Logger;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class StagedFiles {
  /** How long the last `haproxy -c` took. */
  lastCheckMs = 0;
  private counter = 0;
  private swept = false;

  constructor(private readonly o: StagedFilesOptions) {}

  /**
   * Temp files beside the targets and `haproxy -c` on the temp config (pointed at the temp map, so the
   * check sees the map it will run with and the old files stay intact if it fails). Throws with
   * HAProxy's words if it is rejected (the temp files removed). `commit` renames the map, then the
   * config, over the old ones; `discard` removes what is left.
   */
  async stage(text: string, mapText: string, tlsMapText = ''): Promise<Staged> {
    const file = this.o.configFile;
    this.counter += 1;
    const temp = (target: string): string =>
      join(dirname(target), `.${basename(target)}.glue-${process.pid}-${this.counter}.tmp`);
    const tmp = temp(file);
    const maps = this.maps([mapText, tlsMapText]).map((m) => ({ ...m, tmp: temp(m.path) }));
    const discard = async (): Promise<void> => {
      await rm(tmp, { force: true });
      for (const m of maps) await rm(m.tmp, { force: true });
    };
    // Every file Glue writes carries its mark (a user template's text too): see file-claim.ts.
    text = withMark(text, 'the HAProxy config');
    const toTemp = (t: string): string => maps.reduce((out, m) => out.split(m.path).join(m.tmp), t);
    const fromTemp = (t: string): string =>
      maps
        .reduce((out, m) => out.split(m.tmp).join(m.path), t)
        .split(tmp)
        .join(file);
    const checked = toTemp(text);
    try {
      for (const m of maps) await writeFile(m.tmp, withMark(m.text, m.what), { mode: 0o644 });
      await writeFile(tmp, checked, { mode: 0o644 });
      const check = await checkConfig(this.o.haproxyBin, tmp, this.o.checkTimeoutMs);
      this.lastCheckMs = check.durationMs;
      if (!check.ok) {
        throw new GlueError(
          'BACKEND_REJECTED',
          `haproxy -c rejected the new config, HAProxy keeps running on the last good one (${file}):\n${fromTemp(check.output)}`,
          { handler: this.o.handlerName, file },
        );
      }
    } catch (err) {
      await discard();
      throw err;
    }
    const commit = async (): Promise<void> => {
      if (checked !== text) await writeFile(tmp, text, { mode: 0o644 });
      for (const m of maps) await rename(m.tmp, m.path);
      await rename(tmp, file);
    };
    return { commit, discard };
  }

  /** The map files this config uses, with their texts (in the order of `texts`: host map, TLS map). */
  private maps(texts: readonly string[]): Array<{ path: string; text: string; what: string }> {
    const all = [
      { path: this.o.hostMap, what: 'host -> slot map' },
      { path: this.o.tlsMap ?? '', what: 'HTTPS host -> flags map' },
    ];
    return all.flatMap((m, i) => (m.path ? [{ ...m, text: texts[i] ?? '' }] : []));
  }

  /** Writes config and map: stage (or the files `stage()` already checked), commit; the temp files never outlive it. */
  async write(text: string, mapText: string, tlsMapText: string, staged?: Staged): Promise<void> {
    const files = staged ?? (await this.stage(text, mapText, tlsMapText));
    try {
      await files.commit();
    } finally {
      await files.discard();
    }
  }

  /**
   * The config file an earlier run left, if it was written for `runtimeSocket` (params unchanged, so
   * HAProxy answers where Glue waits for it) and still passes `haproxy -c`; else undefined.
   */
  async lastGood(runtimeSocket: string): Promise<string | undefined> {
    const file = this.o.configFile;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return undefined;
    }
    if (!text.includes(runtimeSocket)) return undefined;
    const check = await checkConfig(this.o.haproxyBin, file, this.o.checkTimeoutMs);
    if (check.ok) return text;
    this.o.logger.warn(
      { config: file, haproxy: check.output },
      `the config ${file} left by an earlier run fails haproxy -c, HAProxy starts with an empty one:\n${check.output}`,
    );
    return undefined;
  }

  /**
   * Refuses a config file or host map Glue did not write (claimFile), or with `takeover` moves it
   * aside, once, before the first write.
   */
  async claim(takeover: boolean): Promise<void> {
    const targets: Array<[string, string]> = [['config-file', this.o.configFile]];
    if (this.o.hostMap) targets.push(['host-map', this.o.hostMap]);
    if (this.o.tlsMap) targets.push(['tls-map', this.o.tlsMap]);
    for (const [key, file] of targets) {
      const aside = await claimFile(file, key, takeover, this.o.handlerName);
      if (aside)
        this.o.logger.warn(
          { [key]: file, original: aside },
          `took over ${file} (takeover=yes): the original is kept as ${aside}; Glue writes ${file} from now on`,
        );
    }
  }

  /** Removes `.<name>.glue-<pid>-<n>.tmp` files that runs which are gone left beside the config and the host map (once). */
  async sweepTemps(): Promise<void> {
    if (this.swept) return;
    this.swept = true;
    const targets = [this.o.configFile, ...[this.o.hostMap, this.o.tlsMap ?? ''].filter((f) => f !== '')];
    for (const target of targets) {
      const dir = dirname(target);
      const prefix = `.${basename(target)}.glue-`;
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
        const pid = /^(\d+)-\d+\.tmp$/.exec(name.slice(prefix.length))?.[1];
        if (pid === undefined || Number(pid) === process.pid || processAlive(Number(pid))) continue;
        await rm(join(dir, name), { force: true });
        this.o.logger.info(
          { file: join(dir, name) },
          `removed ${join(dir, name)}, left by Glue process ${pid} which is gone`,
        );
      }
    }
  }
}
