import { describe, expect, it } from 'vitest';
import { findLauncher, isPackageManager, launcherGone, readProc, type ProcInfo } from '../src/launcher.js';

/** npx's tree: npm (retitled) -> sh -c -> glue (us, ppid 11). */
const npxTree = (): Map<number, ProcInfo> =>
  new Map([
    [11, { ppid: 10, start: '500', cmdline: "sh -c 'glue' -w -c /etc/docker-glue.d" }],
    [10, { ppid: 9, start: '400', cmdline: 'npm exec @glue/cli -w -c /etc/docker-glue.d' }],
    [9, { ppid: 1, start: '100', cmdline: '-bash' }],
  ]);
const NPX_ENV = { npm_lifecycle_event: 'npx', npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js' };

describe('findLauncher', () => {
  it('finds npm above the shell npx runs us in', () => {
    const tree = npxTree();
    expect(findLauncher(NPX_ENV, 11, (pid) => tree.get(pid))).toEqual({ pid: 10, start: '400' });
  });

  it('watches nothing when no package manager started us (systemd, a shell, nohup)', () => {
    const tree = npxTree();
    expect(findLauncher({}, 11, (pid) => tree.get(pid))).toBeUndefined();
    expect(findLauncher(NPX_ENV, 9, (pid) => tree.get(pid))).toBeUndefined();
  });

  it('knows npm, npx, pnpm and yarn by title, script path or $npm_execpath', () => {
    expect(isPackageManager('npm exec @glue/cli', undefined)).toBe(true);
    expect(isPackageManager('node /usr/local/lib/node_modules/pnpm/bin/pnpm.cjs glue -w', undefined)).toBe(true);
    expect(isPackageManager('node /opt/x/my-pm.js run', '/opt/x/my-pm.js')).toBe(true);
    expect(isPackageManager('/usr/bin/yarn start', undefined)).toBe(true);
    expect(isPackageManager("sh -c 'glue' -w", undefined)).toBe(false);
    expect(isPackageManager('node /usr/bin/npmish-tool', undefined)).toBe(false);
  });
});

describe('launcherGone', () => {
  it('resolves with the PID once npm is gone, or replaced by a later process with its PID', async () => {
    for (const after of [undefined, { ppid: 1, start: '999', cmdline: 'other' }]) {
      const tree = npxTree();
      const watch = launcherGone({ env: NPX_ENV, ppid: 11, read: (pid) => tree.get(pid), intervalMs: 5 });
      let gone: number | undefined;
      void watch.gone.then((pid) => (gone = pid));
      await new Promise((r) => setTimeout(r, 30));
      expect(gone).toBeUndefined();
      if (after) tree.set(10, after);
      else tree.delete(10);
      await expect(watch.gone).resolves.toBe(10);
    }
  });

  it('reads this process from /proc (its parent, a start time, a command line)', () => {
    const me = readProc(process.pid);
    expect(me?.ppid).toBe(process.ppid);
    expect(me?.start).toMatch(/^\d+$/);
    expect(me?.cmdline).toContain('node');
  });
});
