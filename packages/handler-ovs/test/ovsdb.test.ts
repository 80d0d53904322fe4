import { GlueError } from '@glue/core';
import { describe, expect, it } from 'vitest';
import { OvsClient, parseTable, toInterface } from '../src/ovsdb.js';
import type { CommandRunner } from '@glue/core';

// Output as ovs-vsctl 3.1 prints it (captured from a real switch).
const FIND =
  '{"data":[["govtst1",1,["set",[]],["map",[["container_id","abc"],["glue_engine","AB:CD:EF"]]]],["govnodev",-1,"could not open network device govnodev (No such device)",["map",[]]]],"headings":["name","ofport","error","external_ids"]}';

describe('parseTable / toInterface', () => {
  it('reads rows keyed by heading, sets, maps and plain values', () => {
    const rows = parseTable(FIND).map(toInterface);
    expect(rows).toEqual([
      { name: 'govtst1', ofport: 1, error: '', externalIds: { container_id: 'abc', glue_engine: 'AB:CD:EF' } },
      {
        name: 'govnodev',
        ofport: -1,
        error: 'could not open network device govnodev (No such device)',
        externalIds: {},
      },
    ]);
  });

  it('an empty result and a non-table are told apart', () => {
    expect(parseTable('{"data":[],"headings":["name"]}')).toEqual([]);
    expect(parseTable('')).toEqual([]);
    expect(() => parseTable('{"x":1}')).toThrow(/not an ovs-vsctl JSON table/);
  });
});

describe('OvsClient', () => {
  const recorder = (result: {
    exitCode: number;
    stdout?: string;
    stderr?: string;
  }): { calls: string[][]; runner: CommandRunner } => {
    const calls: string[][] = [];
    return {
      calls,
      runner: async (file, args) => (
        calls.push([file, ...args]),
        { exitCode: result.exitCode, stdout: result.stdout ?? '', stderr: result.stderr ?? '' }
      ),
    };
  };

  it('quotes values in conditions and bounds every call', async () => {
    const { calls, runner } = recorder({
      exitCode: 0,
      stdout: '{"data":[],"headings":["name","ofport","error","external_ids"]}',
    });
    await new OvsClient(runner, 'unix:/x/db.sock', 5000).findInterfaces({ glue_engine: 'AB:CD "x"' });
    expect(calls[0]).toEqual([
      'ovs-vsctl',
      '--db=unix:/x/db.sock',
      '--timeout=5',
      '--format=json',
      '--columns=name,ofport,error,external_ids',
      'find',
      'Interface',
      'external_ids:glue_engine="AB:CD \\"x\\""',
    ]);
  });

  it('a non-zero exit throws with the command and what it printed', async () => {
    const { runner } = recorder({
      exitCode: 1,
      stderr: 'ovs-vsctl: unix:/x/db.sock: database connection failed (No such file or directory)',
    });
    await expect(new OvsClient(runner, 'unix:/x/db.sock', 5000).deletePorts(['p1', 'p2'])).rejects.toThrow(
      /removing ports p1, p2: `ovs-vsctl --db=unix:\/x\/db.sock --timeout=5 --if-exists del-port p1 -- --if-exists del-port p2` exited 1: ovs-vsctl: unix:\/x\/db.sock: database connection failed/,
    );
  });

  it('errors carry the handler and INI file, also for an answer it cannot read', async () => {
    const tag = { handler: 'ovs.ini', file: '/etc/glue.d/ovs.ini' };
    const failing = recorder({ exitCode: 1, stderr: 'ovs-vsctl: no bridge named br0' });
    const err = await new OvsClient(failing.runner, undefined, 5000, tag).deletePorts(['p1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GlueError);
    expect(err).toMatchObject(tag);
    const garbled = recorder({ exitCode: 0, stdout: 'not json' });
    const err2 = await new OvsClient(garbled.runner, undefined, 5000, tag)
      .findInterfaces({ container_id: 'x' })
      .catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(GlueError);
    expect(err2).toMatchObject(tag);
    expect((err2 as Error).message).toMatch(/^looking up ports: cannot read ovs-vsctl's answer/);
  });

  it('lookup reads the bridge and the interfaces from one call', async () => {
    const out = ['{"data":[["br0","netdev"]],"headings":["name","datapath_type"]}', FIND].join('\n');
    const { calls, runner } = recorder({ exitCode: 0, stdout: `${out}\n` });
    const r = await new OvsClient(runner, undefined, 15000).lookup('br0', { container_id: 'abc' });
    expect(calls).toHaveLength(1);
    expect(r.bridge).toEqual({ name: 'br0', datapathType: 'netdev' });
    expect(r.interfaces.map((i) => i.name)).toEqual(['govtst1', 'govnodev']);
  });
});
