import type { CommandResult, CommandRunner } from '@glue/core';

/** nft and conntrack as far as the handler uses them: scripts recorded, a table to read back, flows to delete. */
export class FakeKernel {
  /** Every script given to `nft -f -`. */
  readonly scripts: string[] = [];
  /** `conntrack -D` argument lists. */
  readonly deletions: string[][] = [];
  /** What `nft -j list table` prints (undefined: no such table). */
  table: string | undefined;
  /** Flows conntrack deletes per `udp 10.0.0.2:53`. */
  readonly flows = new Map<string, number>();
  /** Makes the next `nft -f` fail with this message. */
  failNext: string | undefined;

  readonly runner: CommandRunner = (file, args, options) => Promise.resolve(this.run(file, args, options?.input));

  private run(file: string, args: readonly string[], input: string | undefined): CommandResult {
    const ok = (stdout = '', stderr = ''): CommandResult => ({ exitCode: 0, stdout, stderr });
    if (file === 'nft' && args[0] === '-f') {
      if (this.failNext) {
        const stderr = this.failNext;
        this.failNext = undefined;
        return { exitCode: 1, stdout: '', stderr };
      }
      this.scripts.push(input ?? '');
      return ok();
    }
    if (file === 'nft' && args[0] === '-j')
      return this.table === undefined
        ? { exitCode: 1, stdout: '', stderr: 'Error: No such file or directory\nlist table ip glue' }
        : ok(this.table);
    if (file === 'conntrack') {
      this.deletions.push([...args]);
      const key = `${args[2]} ${args[4]}:${args[6]}`;
      const n = this.flows.get(key) ?? 0;
      this.flows.delete(key);
      return {
        exitCode: n > 0 ? 0 : 1,
        stdout: '',
        stderr: `conntrack v1.4.7 (conntrack-tools): ${n} flow entries have been deleted.`,
      };
    }
    return { exitCode: -1, stdout: '', stderr: `spawn ${file} ENOENT` };
  }

  get last(): string {
    return this.scripts[this.scripts.length - 1] ?? '';
  }
}
