/**
 * SIGHUP: which handlers a new reading of the INI files keeps, stops and starts. Pure. A handler is
 * its file: the same file with the same text is kept as it runs; a file whose text changed is stopped
 * and started again from the new text; a file that went (or is now `enabled=false`) is stopped.
 */
export interface ReloadPlan<E, C> {
  /** In the new file order: running entries to keep, and configs to load and start. */
  order: Array<{ keep: E } | { load: C }>;
  /** Running entries to stop: their file went, changed, or is disabled. */
  stop: E[];
}

export function planReload<
  E extends { file: string | undefined; text: string | undefined },
  C extends { file: string; enabled: boolean; ini: { text: string } },
>(running: readonly E[], configs: readonly C[]): ReloadPlan<E, C> {
  const byFile = new Map(running.filter((e) => e.file !== undefined).map((e) => [e.file!, e]));
  const order: ReloadPlan<E, C>['order'] = [];
  const kept = new Set<E>();
  for (const c of configs) {
    if (!c.enabled) continue;
    const e = byFile.get(c.file);
    if (e && e.text === c.ini.text) {
      order.push({ keep: e });
      kept.add(e);
    } else order.push({ load: c });
  }
  const stop = running.filter((e) => e.file !== undefined && !kept.has(e));
  return { order, stop };
}
