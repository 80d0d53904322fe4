/**
 * The daemon's own series, fed by a Glue's events (nothing in the event path knows of metrics).
 */
import { CONTAINER_ACTIONS } from './events.js';
import type { Glue } from './glue.js';
import { CORE_VERSION, type Metrics } from './metrics.js';

const ACTIONS: ReadonlySet<string> = new Set(CONTAINER_ACTIONS);

/** `glue_build_info{version, node} 1`. */
export function buildInfo(metrics: Metrics): void {
  metrics
    .gauge({
      name: 'glue_build_info',
      help: 'Always 1; the labels say which Glue runs',
      labelNames: ['version', 'node'],
    })
    .set({ version: CORE_VERSION, node: process.version }, 1);
}

export function observeGlue(glue: Glue, metrics: Metrics): void {
  buildInfo(metrics);
  const connected = metrics.gauge({
    name: 'glue_engine_connected',
    help: "1 while the Docker engine's event stream is up",
  });
  connected.set(0);
  const connects = metrics.counter({
    name: 'glue_engine_connects_total',
    help: 'Connections to the engine made (the first and every reconnect)',
  });
  const events = metrics.counter({
    name: 'glue_engine_events_total',
    help: 'Container events received from the engine (replayed and synthesized ones too), by action',
    labelNames: ['action'],
  });
  const runs = metrics.counter({
    name: 'glue_handler_runs_total',
    help: 'Handler runs, by handler and result (ok, failed, timeout)',
    labelNames: ['handler', 'result'],
  });
  const duration = metrics.histogram({
    name: 'glue_handler_run_duration_seconds',
    help: 'How long one handler run took',
    labelNames: ['handler'],
  });
  const applied = metrics.histogram({
    name: 'glue_event_to_handled_seconds',
    help: "From the engine's event to the end of a handler's successful run on it (for Glue's handlers: the change is in effect)",
    labelNames: ['handler'],
  });
  const reloads = metrics.counter({
    name: 'glue_reloads_total',
    help: 'Reloads of the INI files (SIGHUP), by result (ok, refused)',
    labelNames: ['result'],
  });

  glue.on('engine', ({ connected: up }) => {
    connected.set(up ? 1 : 0);
    if (up) connects.inc();
  });
  glue.on('event', (event) => events.inc({ action: ACTIONS.has(event.action) ? event.action : 'other' }));
  glue.on('handler', (run) => {
    runs.inc({ handler: run.handler, result: run.ok ? 'ok' : run.timedOut ? 'timeout' : 'failed' });
    duration.observe({ handler: run.handler }, run.durationMs / 1000);
    if (run.ok && run.eventTimeNano > 0n) {
      const ageMs = Date.now() - Number(run.eventTimeNano / 1_000_000n);
      applied.observe({ handler: run.handler }, Math.max(0, ageMs) / 1000);
    }
  });
  glue.on('reload', ({ ok }) => reloads.inc({ result: ok ? 'ok' : 'refused' }));
}
