import { afterEach, describe, expect, it } from 'vitest';
import { createGlue, type Glue } from '../src/index.js';
import { FakeEngine } from './fake-engine.js';

const glues: Glue[] = [];
afterEach(async () => {
  await Promise.all(glues.splice(0).map((g) => g.stop()));
});

async function until(check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const value = async (glue: Glue, name: string, labels: Record<string, string> = {}): Promise<number | undefined> => {
  const metric = await glue.metrics.registry.getSingleMetric(name)?.get();
  return metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
};

describe("Glue's metrics and readiness", () => {
  it('counts events by action and runs by handler and result; readiness follows the engine and the handlers', async () => {
    const engine = new FakeEngine();
    let problem: string | undefined = 'no lease yet';
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        {
          name: 'a.ini',
          events: ['start', 'die', 'none'],
          handler: {
            handle: (event: string) => {
              if (event === 'die') throw new Error('boom');
            },
            ready: () => problem,
          },
        },
      ],
    });
    glues.push(glue);
    expect((await glue.readiness()).filter((c) => c.problem).map((c) => c.name)).toEqual([
      'watching',
      'engine',
      'inventory',
    ]);
    await glue.start();
    await until(async () => (await value(glue, 'glue_handler_runs_total', { result: 'ok' })) === 1);
    expect(await value(glue, 'glue_engine_connected')).toBe(1);
    expect(await glue.readiness()).toEqual([
      { name: 'watching' },
      { name: 'engine' },
      { name: 'inventory' },
      { name: 'a.ini', problem: 'no lease yet' },
    ]);
    problem = undefined;
    expect((await glue.readiness()).every((c) => c.problem === undefined)).toBe(true);

    const c = engine.add({});
    engine.emit('start', c.Id);
    engine.emit('die', c.Id);
    engine.emit('exec_die', c.Id);
    await until(async () => (await value(glue, 'glue_handler_runs_total', { result: 'failed' })) === 1);
    expect(await value(glue, 'glue_handler_runs_total', { handler: 'a.ini', result: 'ok' })).toBe(2);
    expect(await value(glue, 'glue_engine_events_total', { action: 'start' })).toBe(1);
    expect(await value(glue, 'glue_engine_events_total', { action: 'exec_die' })).toBe(1);
    // One event -> handled sample per successful container-event run (none has no engine time).
    const handled = await glue.metrics.registry.getSingleMetric('glue_event_to_handled_seconds')?.get();
    const count = handled?.values.find(
      (v) => (v as { metricName?: string }).metricName === 'glue_event_to_handled_seconds_count',
    );
    expect(count?.value).toBe(1);
    await glue.stop();
    expect((await glue.readiness())[0]).toEqual({ name: 'watching', problem: 'Glue is stopped' });
  });

  it('a handler check that throws or hangs fails readiness with the reason', async () => {
    const glue = createGlue({
      docker: new FakeEngine().docker,
      handlers: [
        {
          name: 'throws.ini',
          events: ['none'],
          handler: {
            handle: () => undefined,
            ready: () => {
              throw new Error('bad');
            },
          },
        },
        {
          name: 'hangs.ini',
          events: ['none'],
          handler: { handle: () => undefined, ready: () => new Promise(() => undefined) },
        },
      ],
    });
    glues.push(glue);
    await glue.load();
    const checks = await glue.readiness(50);
    expect(checks.slice(3)).toEqual([
      { name: 'throws.ini', problem: 'its check failed: bad' },
      { name: 'hangs.ini', problem: 'its check failed: took over 50 ms' },
    ]);
  });
});
