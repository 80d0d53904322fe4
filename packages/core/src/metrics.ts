/**
 * Glue's Prometheus metrics: one prom-client registry per Glue, the daemon's own series (fed by its
 * events, see observeGlue) and a small facade through which handlers add theirs (`agent.metrics`).
 * Names follow Prometheus conventions: `glue_` prefix, base units, `_total` counters. Labels are
 * bounded: a handler name, an action, a result; never a container.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { GlueError } from './errors.js';

export type { Counter, Gauge, Histogram, Registry };

declare const __GLUE_VERSION__: string;
/** The version of @glue/core that runs. */
export const CORE_VERSION = typeof __GLUE_VERSION__ === 'string' ? __GLUE_VERSION__ : '0.0.0-dev';

export interface MetricSpec {
  /** `glue_<what>_<unit>`, `_total` for counters. */
  name: string;
  help: string;
  labelNames?: readonly string[];
}

/**
 * Where handlers (and Glue) create their metrics. Creating a metric that exists returns it (a handler
 * built again by a reload keeps its series); the same name with another type or labels is an error.
 */
export interface Metrics {
  readonly registry: Registry;
  counter(spec: MetricSpec): Counter;
  gauge(spec: MetricSpec): Gauge;
  histogram(spec: MetricSpec & { buckets?: readonly number[] }): Histogram;
  /**
   * `fn` runs before every scrape (set gauges and counters from state kept elsewhere, e.g. a
   * handler's stats); the returned function removes it (call it from the handler's stop()).
   */
  collector(fn: () => void): () => void;
  /** The exposition text: the collectors run, then every metric is read. */
  text(): Promise<string>;
  /** Adds Node's process metrics (CPU, memory, event loop lag); the ops endpoint turns them on. */
  withProcessMetrics(): void;
}

const NAME = /^glue_[a-z][a-z0-9_]*$/;
const LABEL = /^[a-z][a-z0-9_]*$/;
/** Seconds: from 1 ms to a minute, for runs and event -> applied. */
export const SECONDS_BUCKETS: readonly number[] = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/**
 * Feeds `counter{labels}` from a running total kept elsewhere (a handler's stats): each call adds what
 * the total grew by since the last call. Collectors use it, since other handlers may share the counter.
 */
export function followTotal(counter: Counter, labels: Record<string, string>): (total: number) => void {
  let last = 0;
  return (total) => {
    if (total > last) counter.inc(labels, total - last);
    last = total;
  };
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const made = new Map<string, { kind: string; labels: string; metric: Counter | Gauge | Histogram }>();
  let processMetrics = false;
  const collectors = new Set<() => void>();

  const make = <M extends Counter | Gauge | Histogram>(kind: string, spec: MetricSpec, build: () => M): M => {
    const labelNames = [...(spec.labelNames ?? [])];
    const problem = !NAME.test(spec.name)
      ? `metric name ${JSON.stringify(spec.name)} must match ${String(NAME)}`
      : labelNames.find((l) => !LABEL.test(l)) !== undefined
        ? `metric ${spec.name}: label names must match ${String(LABEL)}`
        : kind === 'counter' && !spec.name.endsWith('_total')
          ? `counter ${spec.name} must end in _total`
          : undefined;
    if (problem) throw new GlueError('INVALID_PARAM', problem);
    const labels = labelNames.join(',');
    const existing = made.get(spec.name);
    if (existing) {
      if (existing.kind !== kind || existing.labels !== labels)
        throw new GlueError(
          'INVALID_PARAM',
          `metric ${spec.name} exists as a ${existing.kind} with labels [${existing.labels}]: cannot make it a ${kind} with [${labels}]`,
        );
      return existing.metric as M;
    }
    const metric = build();
    made.set(spec.name, { kind, labels, metric });
    return metric;
  };

  return {
    registry,
    counter: (spec) =>
      make(
        'counter',
        spec,
        () => new Counter({ ...spec, labelNames: [...(spec.labelNames ?? [])], registers: [registry] }),
      ),
    gauge: (spec) =>
      make(
        'gauge',
        spec,
        () => new Gauge({ ...spec, labelNames: [...(spec.labelNames ?? [])], registers: [registry] }),
      ),
    histogram: (spec) =>
      make(
        'histogram',
        spec,
        () =>
          new Histogram({
            name: spec.name,
            help: spec.help,
            labelNames: [...(spec.labelNames ?? [])],
            buckets: [...(spec.buckets ?? SECONDS_BUCKETS)],
            registers: [registry],
          }),
      ),
    collector: (fn) => {
      const entry = (): void => fn();
      collectors.add(entry);
      return () => void collectors.delete(entry);
    },
    text: async () => {
      for (const fn of collectors) {
        try {
          fn();
        } catch {
          // One broken collector must not take the scrape down: its series keep their last values.
        }
      }
      return registry.metrics();
    },
    withProcessMetrics: () => {
      if (processMetrics) return;
      processMetrics = true;
      collectDefaultMetrics({ register: registry });
    },
  };
}
