/**
 * `glue check` (`glue -t`): what is wrong with the configuration and with the containers' labels,
 * before anything runs, as `nginx -t` and `haproxy -c` tell their users. This module is the pure part:
 * containers and handlers in, one sentence per problem out.
 */
import type { ContainerInspectInfo } from 'dockerode';
import { containerName } from './container-store.js';
import type { ConfigProblem } from './errors.js';
import type { Handler } from './handler.js';
import { describeLabelProblem, type LabelProblem, parseLabels } from './labels.js';

export interface CheckReport {
  /** INI problems: file, line, section, key. */
  config: ConfigProblem[];
  /** Whether the containers were read, and how many; or why not. */
  engine: { checked: true; containers: number } | { checked: false; reason: string };
  /** One sentence per bad label: container, label, value, reason (and the handler whose grammar refused it). */
  labels: string[];
}

/** The label families Glue's shared routing grammar reads. */
export const ROUTING_PREFIXES: readonly string[] = ['glue_http_', 'glue_tcp_', 'glue_network'];

/** Every problem of every container's `glue_*` labels, by the routing grammar and each handler's own. */
export function containerProblems(
  containers: readonly ContainerInspectInfo[],
  handlers: ReadonlyArray<{ name: string; instance: Handler }>,
  options: { unreadLabels?: boolean } = {},
): string[] {
  // With handlers that failed to load, which families are read is not known: say nothing of them.
  const unread = options.unreadLabels ?? true;
  const families = [...ROUTING_PREFIXES, ...handlers.flatMap((h) => h.instance.labelPrefixes ?? [])];
  const out: string[] = [];
  for (const info of containers) {
    const labels = info.Config?.Labels ?? {};
    const glue = Object.keys(labels).filter((l) => l.startsWith('glue_'));
    if (glue.length === 0) continue;
    const name = containerName(info) || info.Id.slice(0, 12);
    const seen = new Set<string>();
    const add = (p: LabelProblem, by?: string): void => {
      const key = `${p.label}\0${p.reason}`;
      if (seen.has(key)) return;
      seen.add(key);
      out.push(`${describeLabelProblem(name, p)}${by ? ` (${by})` : ''}`);
    };
    for (const label of glue)
      if (unread && !families.some((f) => label.startsWith(f)))
        add({
          label,
          value: labels[label] ?? '',
          reason: `is read by no handler loaded (${families.map((f) => (f.endsWith('_') ? `${f}*` : f)).join(', ')})`,
        });
    if (glue.some((l) => ROUTING_PREFIXES.some((f) => l.startsWith(f))))
      for (const p of parseLabels(labels).problems) add(p);
    for (const h of handlers) {
      if (typeof h.instance.checkContainer !== 'function') continue;
      try {
        for (const p of h.instance.checkContainer(info)) add(p, h.name);
      } catch (err) {
        out.push(
          `container ${name}: ${h.name} could not check it: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
  }
  return out;
}
