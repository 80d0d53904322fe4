/**
 * Pure planning of etcd writes: what is in etcd (or was last applied) and what is wanted -> the put
 * and delete operations, and those cut into transactions etcd accepts. EtcdSync executes them.
 */
import type { IRequestOp } from 'etcd3';

/** etcd refuses transactions with more than 128 operations (--max-txn-ops) or 1.5 MiB: stay below. */
export const MAX_TXN_OPS = 100;
export const MAX_TXN_BYTES = 1024 * 1024;

/** One key as etcd holds it. */
export interface StoredKey {
  lease: string;
  value: string;
}

export interface TxnPlan {
  ops: IRequestOp[];
  puts: number;
  deletes: number;
}

export function putOp(key: string, value: string, lease: string): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(value), lease } };
}

const deleteOp = (key: string): IRequestOp => ({ request_delete_range: { key: Buffer.from(key) } });

/**
 * A full reconcile: every wanted key that is missing, different or on another lease is put; every
 * key of ours in etcd that is not wanted is deleted. The owner key's put goes first (`ownerFirst`),
 * so the transactions after it can be guarded by it.
 */
export function planReconcile(
  existing: ReadonlyMap<string, StoredKey>,
  want: Iterable<ReadonlyMap<string, string>>,
  ownerKey: string,
  lease: string,
): TxnPlan & { ownerFirst: boolean } {
  const ops: IRequestOp[] = [];
  const wanted = new Set<string>();
  for (const entries of want) {
    for (const [key, value] of entries) {
      wanted.add(key);
      const kv = existing.get(key);
      if (kv === undefined || kv.lease !== lease || kv.value !== value) ops.push(putOp(key, value, lease));
    }
  }
  const ownerIndex = ops.findIndex((op) => op.request_put?.key?.toString() === ownerKey);
  if (ownerIndex > 0) ops.unshift(...ops.splice(ownerIndex, 1));
  const puts = ops.length;
  for (const key of existing.keys()) if (!wanted.has(key)) ops.push(deleteOp(key));
  return { ops, puts, deletes: ops.length - puts, ownerFirst: ownerIndex >= 0 };
}

/** The changes of some containers since they were last applied: puts of what differs, deletes of what went. */
export function planChanges(
  ids: Iterable<string>,
  desired: ReadonlyMap<string, ReadonlyMap<string, string>>,
  applied: ReadonlyMap<string, ReadonlyMap<string, string>>,
  lease: string,
): TxnPlan {
  const ops: IRequestOp[] = [];
  let deletes = 0;
  for (const id of ids) {
    const want = desired.get(id);
    const have = applied.get(id);
    for (const [key, value] of want ?? []) if (have?.get(key) !== value) ops.push(putOp(key, value, lease));
    for (const key of have?.keys() ?? []) {
      if (!want?.has(key)) {
        ops.push(deleteOp(key));
        deletes += 1;
      }
    }
  }
  return { ops, puts: ops.length - deletes, deletes };
}

/** `ops` in order, cut into transactions of at most MAX_TXN_OPS operations and about MAX_TXN_BYTES. */
export function batches(ops: readonly IRequestOp[]): IRequestOp[][] {
  const out: IRequestOp[][] = [];
  let batch: IRequestOp[] = [];
  let bytes = 0;
  for (const op of ops) {
    const size =
      (op.request_put?.key?.length ?? 0) +
      (op.request_put?.value?.length ?? 0) +
      (op.request_delete_range?.key?.length ?? 0) +
      16;
    if (batch.length > 0 && (batch.length >= MAX_TXN_OPS || bytes + size > MAX_TXN_BYTES)) {
      out.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(op);
    bytes += size;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}
