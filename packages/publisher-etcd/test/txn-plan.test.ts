/** The pure write planning: what to put and delete, owner first, and transactions etcd accepts. */
import { describe, expect, it } from 'vitest';
import { batches, MAX_TXN_BYTES, MAX_TXN_OPS, planChanges, planReconcile } from '../src/txn-plan.js';

const keys = (ops: ReturnType<typeof planReconcile>['ops']): string[] =>
  ops.map(
    (op) => `${op.request_put ? 'put' : 'del'} ${(op.request_put?.key ?? op.request_delete_range?.key)?.toString()}`,
  );

describe('planReconcile', () => {
  it('puts what is missing, different or on another lease, deletes what is not wanted, the owner key first', () => {
    const existing = new Map([
      ['/p/a', { lease: 'L', value: '1' }],
      ['/p/b', { lease: 'L', value: 'old' }],
      ['/p/c', { lease: 'OTHER', value: '3' }],
      ['/p/gone', { lease: 'L', value: 'x' }],
    ]);
    const want = [
      new Map([
        ['/p/a', '1'],
        ['/p/b', '2'],
        ['/p/c', '3'],
        ['/p/new', '4'],
      ]),
      new Map([['/p/owner', 'me']]),
    ];
    const plan = planReconcile(existing, want, '/p/owner', 'L');
    expect(keys(plan.ops)).toEqual(['put /p/owner', 'put /p/b', 'put /p/c', 'put /p/new', 'del /p/gone']);
    expect(plan).toMatchObject({ puts: 4, deletes: 1, ownerFirst: true });
    expect(
      planReconcile(
        new Map([['/p/owner', { lease: 'L', value: 'me' }]]),
        [new Map([['/p/owner', 'me']])],
        '/p/owner',
        'L',
      ),
    ).toMatchObject({ ops: [], ownerFirst: false });
  });
});

describe('planChanges', () => {
  it('only the containers named: their changed keys, and the keys they no longer have', () => {
    const desired = new Map([
      [
        'c1',
        new Map([
          ['/k/1', 'a'],
          ['/k/2', 'b'],
        ]),
      ],
    ]);
    const applied = new Map([
      [
        'c1',
        new Map([
          ['/k/1', 'a'],
          ['/k/3', 'z'],
        ]),
      ],
      ['c2', new Map([['/k/9', 'q']])],
    ]);
    const plan = planChanges(['c1', 'c2'], desired, applied, 'L');
    expect(keys(plan.ops)).toEqual(['put /k/2', 'del /k/3', 'del /k/9']);
    expect(plan).toMatchObject({ puts: 1, deletes: 2 });
  });
});

describe('batches', () => {
  it('at most MAX_TXN_OPS operations and about MAX_TXN_BYTES per transaction, order kept', () => {
    const small = Array.from({ length: 250 }, (_, i) => ({
      request_put: { key: Buffer.from(`k${i}`), value: Buffer.from('v'), lease: 'L' },
    }));
    expect(batches(small).map((b) => b.length)).toEqual([MAX_TXN_OPS, MAX_TXN_OPS, 50]);
    expect(batches(small).flat()).toEqual(small);
    const big = Array.from({ length: 3 }, (_, i) => ({
      request_put: { key: Buffer.from(`b${i}`), value: Buffer.alloc(MAX_TXN_BYTES / 2), lease: 'L' },
    }));
    expect(batches(big).map((b) => b.length)).toEqual([1, 1, 1]);
    expect(batches([])).toEqual([]);
  });
});
