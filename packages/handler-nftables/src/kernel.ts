/**
 * The two programs that change the kernel, each with argument arrays and never a shell: `nft` (the
 * script on stdin, applied as one transaction; `-j list table` to read back) and `conntrack` (flows
 * of an endpoint that went).
 */
import { type CommandRunner, formatCommand, GlueError, type GlueErrorOptions } from '@glue/core';
import type { Flowpoint } from './model.js';
import type { Family } from './params.js';
import { parseTable, type TableState } from './readback.js';

export interface KernelSettings {
  nft: string;
  conntrack: string;
  family: Family;
  table: string;
  timeoutMs: number;
}

const oneLine = (text: string): string => text.trim().split('\n').slice(0, 6).join(' | ').slice(0, 600);

export class Kernel {
  constructor(
    private readonly run: CommandRunner,
    private readonly settings: KernelSettings,
    private readonly tag: Pick<GlueErrorOptions, 'handler' | 'file'>,
  ) {}

  private fail(file: string, args: readonly string[], stderr: string, exitCode: number): GlueError {
    const missing = exitCode === -1 && /ENOENT/.test(stderr);
    return new GlueError(
      missing ? 'DEPENDENCY_MISSING' : 'COMMAND_FAILED',
      missing
        ? `${file} not found (install ${file === this.settings.conntrack ? 'conntrack' : 'nftables'}, or set the ${file === this.settings.conntrack ? 'conntrack' : 'nft'} param)`
        : `${formatCommand(file, args)} failed (exit ${exitCode}): ${oneLine(stderr) || 'no message'}`,
      this.tag,
    );
  }

  /** The table as the kernel has it, or undefined when there is none. */
  async read(signal?: AbortSignal): Promise<TableState | undefined> {
    const { nft, family, table, timeoutMs } = this.settings;
    const args = ['-j', 'list', 'table', family, table];
    const r = await this.run(nft, args, { signal, timeoutMs });
    if (r.exitCode !== 0) {
      if (/No such file or directory/.test(r.stderr)) return undefined;
      throw this.fail(nft, args, r.stderr, r.exitCode);
    }
    try {
      return parseTable(r.stdout);
    } catch (err) {
      throw new GlueError('COMMAND_FAILED', `${formatCommand(nft, args)}: ${(err as Error).message}`, this.tag);
    }
  }

  /** Applies one script as one transaction (`nft -f -`): all of it or, on any error, none of it. */
  async apply(script: string, signal?: AbortSignal): Promise<void> {
    const { nft, timeoutMs } = this.settings;
    const args = ['-f', '-'];
    const r = await this.run(nft, args, { signal, timeoutMs, input: script });
    if (r.exitCode !== 0) throw this.fail(nft, args, r.stderr, r.exitCode);
  }

  /** Deletes the conntrack entries whose replies come from `f` (flows balanced to it); how many went. */
  async forget(f: Flowpoint, signal?: AbortSignal): Promise<number> {
    const { conntrack, timeoutMs } = this.settings;
    const args = ['-D', '-p', f.protocol, '--reply-src', f.address, '--reply-port-src', String(f.port)];
    const r = await this.run(conntrack, args, { signal, timeoutMs });
    const count = /(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted/.exec(r.stderr + r.stdout)?.[1];
    // conntrack exits 1 when it deleted nothing: that is no failure.
    if (count !== undefined) return Number(count);
    throw this.fail(conntrack, args, r.stderr, r.exitCode);
  }
}
