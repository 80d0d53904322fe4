/**
 * Shared pieces of `[params]` checking: what every handler's reader needs to say about a key.
 */

/** The known key `key` was probably meant as (`host_id` -> `host-id`, `ovs-brige` -> `ovs-bridge`), if any. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase().replace(/_/g, '-');
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = editDistance(k, name);
    if (d <= 2 && (best === undefined || d < best.d)) best = { name, d };
  }
  return best?.name;
}

/** `unknown key (did you mean x?); known keys: a, b, c`: the one sentence for a key no handler reads. */
export function unknownKeyReason(key: string, known: readonly string[]): string {
  const guess = suggestKey(key, known);
  return `unknown key${guess !== undefined ? ` (did you mean ${guess}?)` : ''}; known keys: ${known.join(', ')}`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const row = [i];
    for (let j = 1; j <= b.length; j += 1)
      row.push(
        Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)),
      );
    prev = row;
  }
  return prev[b.length] ?? 0;
}
