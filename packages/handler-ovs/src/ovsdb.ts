import { type CommandResult, type CommandRunner, formatCommand, GlueError, type GlueErrorOptions } from '@glue/core';

/** One row of `ovs-vsctl --format=json find/list Interface`, the columns this handler reads. */
export interface OvsInterface {
  name: string;
  /** -1 when OVS could not open the device, undefined while unassigned. */
  ofport: number | undefined;
  /** OVS's complaint about this interface ('' when none). */
  error: string;
  externalIds: Record<string, string>;
}

export interface OvsBridge {
  name: string;
  datapathType: string;
}

type OvsdbValue =
  string | number | boolean | ['set', OvsdbValue[]] | ['map', [OvsdbValue, OvsdbValue][]] | ['uuid', string];

interface OvsdbTable {
  headings: string[];
  data: OvsdbValue[][];
}

/** Reads the JSON `ovs-vsctl --format=json` prints into objects keyed by column. */
export function parseTable(stdout: string): Record<string, OvsdbValue>[] {
  const text = stdout.trim();
  if (text === '') return [];
  const table = JSON.parse(text) as OvsdbTable;
  if (!Array.isArray(table.headings) || !Array.isArray(table.data)) throw new Error('not an ovs-vsctl JSON table');
  return table.data.map((row) => Object.fromEntries(table.headings.map((h, i) => [h, row[i] as OvsdbValue])));
}

function scalar(value: OvsdbValue | undefined): string | number | boolean | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    if (value[0] === 'set') {
      const items = value[1];
      return items.length === 0 ? undefined : scalar(items[0]);
    }
    if (value[0] === 'uuid') return value[1];
    return undefined;
  }
  return value;
}

function map(value: OvsdbValue | undefined): Record<string, string> {
  if (!Array.isArray(value) || value[0] !== 'map') return {};
  return Object.fromEntries((value[1] as [OvsdbValue, OvsdbValue][]).map(([k, v]) => [String(k), String(v)]));
}

export function toInterface(row: Record<string, OvsdbValue>): OvsInterface {
  const ofport = scalar(row.ofport);
  const error = scalar(row.error);
  return {
    name: String(scalar(row.name) ?? ''),
    ofport: typeof ofport === 'number' ? ofport : undefined,
    error: typeof error === 'string' ? error : '',
    externalIds: map(row.external_ids),
  };
}

/** A string as ovs-vsctl's value syntax wants it: always double-quoted, JSON escapes. */
export function ovsString(value: string): string {
  return JSON.stringify(value);
}

const INTERFACE_COLUMNS = '--columns=name,ofport,error,external_ids';

/**
 * ovs-vsctl through a CommandRunner. Every call is bounded (`--timeout`), and callers check what a
 * command did rather than trust its exit code: ovs-vsctl can print an error and still exit 0.
 */
export class OvsClient {
  constructor(
    private readonly runner: CommandRunner,
    private readonly db: string | undefined,
    private readonly timeoutMs: number,
    /** Put on every error: the handler (INI file name) and its file. */
    private readonly tag: Pick<GlueErrorOptions, 'handler' | 'file'> = {},
  ) {}

  private fail(message: string, cause?: unknown): GlueError {
    return handlerFailure(this.tag, message, cause);
  }

  /** The JSON tables of a multi-command call, one a line; `count` of them or a tagged error. */
  private tables(stdout: string, count: number, what: string): string[] {
    const tables = stdout.split('\n').filter((l) => l.trim() !== '');
    if (tables.length !== count)
      throw this.fail(`${what}: ovs-vsctl printed ${tables.length} tables for ${count} finds: ${oneLine(stdout)}`);
    return tables;
  }

  /** parseTable, with an unreadable answer raised as a tagged error. */
  private parse(stdout: string, what: string): Record<string, OvsdbValue>[] {
    try {
      return parseTable(stdout);
    } catch (err) {
      throw this.fail(
        `${what}: cannot read ovs-vsctl's answer (${err instanceof Error ? err.message : String(err)}): ${oneLine(stdout)}`,
        err,
      );
    }
  }

  private base(): string[] {
    return [...(this.db ? [`--db=${this.db}`] : []), `--timeout=${Math.max(1, Math.ceil(this.timeoutMs / 1000))}`];
  }

  /** Runs ovs-vsctl; throws on a non-zero exit with the command and what it printed. */
  async vsctl(args: readonly string[], signal?: AbortSignal, what = 'ovs-vsctl'): Promise<CommandResult> {
    const full = [...this.base(), ...args];
    const result = await this.runner('ovs-vsctl', full, { signal, timeoutMs: this.timeoutMs + 2000 });
    if (result.exitCode !== 0) {
      throw this.fail(
        `${what}: \`${formatCommand('ovs-vsctl', full)}\` exited ${result.exitCode}: ${oneLine(result.stderr || result.stdout)}`,
      );
    }
    return result;
  }

  /** One ovs-vsctl call: the bridge (if it exists) and the interfaces whose external_ids match. */
  async lookup(
    bridge: string,
    externalIds: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<{ bridge: OvsBridge | undefined; interfaces: OvsInterface[] }> {
    const what = `looking up bridge ${bridge} and ports`;
    const out = await this.vsctl(
      [
        '--format=json',
        '--columns=name,datapath_type',
        'find',
        'Bridge',
        `name=${ovsString(bridge)}`,
        '--',
        INTERFACE_COLUMNS,
        'find',
        'Interface',
        ...idConditions(externalIds),
      ],
      signal,
      what,
    );
    const tables = this.tables(out.stdout, 2, what);
    const row = this.parse(tables[0]!, `looking up bridge ${bridge}`)[0];
    return {
      bridge: row ? { name: bridge, datapathType: String(scalar(row.datapath_type) ?? '') } : undefined,
      interfaces: this.parse(tables[1]!, 'looking up ports').map(toInterface),
    };
  }

  /** Interfaces whose external_ids hold all the given pairs. */
  async findInterfaces(externalIds: Record<string, string>, signal?: AbortSignal): Promise<OvsInterface[]> {
    const out = await this.vsctl(
      ['--format=json', INTERFACE_COLUMNS, 'find', 'Interface', ...idConditions(externalIds)],
      signal,
      'looking up ports',
    );
    return this.parse(out.stdout, 'looking up ports').map(toInterface);
  }

  async getInterface(name: string, signal?: AbortSignal): Promise<OvsInterface | undefined> {
    const out = await this.vsctl(
      ['--format=json', INTERFACE_COLUMNS, 'find', 'Interface', `name=${ovsString(name)}`],
      signal,
      `looking up port ${name}`,
    );
    const row = this.parse(out.stdout, `looking up port ${name}`)[0];
    return row ? toInterface(row) : undefined;
  }

  /** Which of these interfaces are in the database, in one call (one `find` per name). */
  async present(names: readonly string[], signal?: AbortSignal): Promise<string[]> {
    if (names.length === 0) return [];
    const args = names.flatMap((n, i) => [
      ...(i > 0 ? ['--'] : []),
      '--columns=name',
      'find',
      'Interface',
      `name=${ovsString(n)}`,
    ]);
    const what = `checking port${names.length > 1 ? 's' : ''} ${names.join(', ')}`;
    const out = await this.vsctl(['--format=json', ...args], signal, what);
    const tables = this.tables(out.stdout, names.length, what);
    return names.filter((_, i) => this.parse(tables[i]!, `checking port ${names[i]}`).length > 0);
  }

  /**
   * One transaction: the interfaces whose external_ids match, then `--if-exists del-port` for each
   * name, then the matching interfaces again as the transaction left them (`after`).
   */
  async deletePortsAndFind(
    names: readonly string[],
    externalIds: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<{ before: OvsInterface[]; after: OvsInterface[] }> {
    const find = [INTERFACE_COLUMNS, 'find', 'Interface', ...idConditions(externalIds)];
    const what = `removing port${names.length > 1 ? 's' : ''} ${names.join(', ')}`;
    const out = await this.vsctl(
      ['--format=json', ...find, ...names.flatMap((n) => ['--', '--if-exists', 'del-port', n]), '--', ...find],
      signal,
      what,
    );
    const tables = this.tables(out.stdout, 2, what);
    return {
      before: this.parse(tables[0]!, what).map(toInterface),
      after: this.parse(tables[1]!, what).map(toInterface),
    };
  }

  /** Removes ports (one transaction); absent ones are fine. */
  async deletePorts(names: readonly string[], signal?: AbortSignal): Promise<void> {
    if (names.length === 0) return;
    const args = names.flatMap((n, i) => [...(i > 0 ? ['--'] : []), '--if-exists', 'del-port', n]);
    await this.vsctl(args, signal, `removing port${names.length > 1 ? 's' : ''} ${names.join(', ')}`);
  }
}

/** A GlueError of the handler: `tag` names it and its INI file. */
export function handlerFailure(
  tag: Pick<GlueErrorOptions, 'handler' | 'file'>,
  message: string,
  cause?: unknown,
): GlueError {
  return new GlueError('HANDLER_FAILED', message, cause === undefined ? tag : { ...tag, cause });
}

/** `find` conditions: external_ids holding all the given pairs. */
function idConditions(externalIds: Record<string, string>): string[] {
  return Object.entries(externalIds).map(([k, v]) => `external_ids:${k}=${ovsString(v)}`);
}

export function oneLine(text: string): string {
  const t = text.trim().replace(/\s*\n\s*/g, ' | ');
  return t === '' ? '(no output)' : t.length > 500 ? `${t.slice(0, 500)}…` : t;
}
