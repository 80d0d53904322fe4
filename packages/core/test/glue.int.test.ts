import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerd, waitFor, type DockerEngine } from '@glue/testkit';
import { createGlue, createLogger, type ContainerInspectInfo, type Glue, type HandlerContext } from '../src/index.js';

interface Seen {
  event: string;
  id: string;
  labels: Record<string, string> | undefined;
  ip: string | undefined;
  at: number;
}

function ipOf(info: ContainerInspectInfo | undefined): string | undefined {
  return Object.values(info?.NetworkSettings?.Networks ?? {})[0]?.IPAddress || undefined;
}

describe('createGlue against a real Docker engine', () => {
  let engine: DockerEngine;
  const logger = createLogger({ level: 'silent' });
  const glues: Glue[] = [];

  beforeAll(async () => {
    engine = await startDockerd();
  });
  afterAll(async () => {
    await Promise.all(glues.map((g) => g.stop()));
    await engine?.stop();
  });

  function recordingGlue(seen: Seen[], extra: { slowName?: string; slowMs?: number } = {}): Glue {
    const glue = createGlue({
      dockerUrl: engine.url,
      logger,
      handlers: [
        {
          name: 'recorder',
          events: ['all', 'none'],
          handler: {
            handle: async (event: string, id: string, ctx: HandlerContext) => {
              if (extra.slowName && ctx.container?.Name === `/${extra.slowName}` && event === 'start') {
                await new Promise((r) => setTimeout(r, extra.slowMs ?? 0));
              }
              seen.push({
                event,
                id,
                labels: ctx.container?.Config?.Labels ?? undefined,
                ip: ipOf(ctx.container),
                at: Date.now(),
              });
            },
          },
        },
      ],
    });
    glues.push(glue);
    return glue;
  }

  it('knows the containers that existed before it started, and runs none once with an empty id', async () => {
    const before = await engine.run({ name: 'pre-existing', labels: { role: 'web' } });
    const seen: Seen[] = [];
    const glue = recordingGlue(seen);
    const result = await glue.runOnce();
    expect(result.failed).toBe(0);
    expect(seen.map((s) => [s.event, s.id])).toEqual([['none', '']]);
    const known = glue.agent.inspect(before.id);
    expect(known?.Config?.Labels?.['role']).toBe('web');
    expect(glue.agent.containers().map((c) => c.Id)).toContain(before.id);
  });

  it('handlers still see labels and address on die and destroy; each container in order', async () => {
    const seen: Seen[] = [];
    const glue = recordingGlue(seen);
    await glue.start();
    const containers = await Promise.all(
      [1, 2, 3].map((n) => engine.run({ name: `ordered-${n}`, labels: { n: String(n) } })),
    );
    for (const c of containers)
      await waitFor(() => seen.some((s) => s.id === c.id && s.event === 'start'), {
        timeoutMs: 10_000,
        what: `start of ${c.name}`,
      });
    await Promise.all(containers.map((c) => engine.cli(['rm', '-f', c.id])));
    for (const c of containers) {
      await waitFor(() => seen.some((s) => s.id === c.id && s.event === 'destroy'), {
        timeoutMs: 20_000,
        what: `destroy of ${c.name}`,
      });
      const mine = seen.filter((s) => s.id === c.id);
      const order = mine.map((s) => s.event);
      // The whole sequence of the lifecycle events, each once, in order (indexOf comparisons passed with one missing).
      expect(order.filter((e) => ['create', 'start', 'die', 'destroy'].includes(e))).toEqual([
        'create',
        'start',
        'die',
        'destroy',
      ]);
      const destroy = mine.find((s) => s.event === 'destroy');
      expect(destroy?.labels?.['n']).toBe(c.name.split('-')[1]);
      expect(mine.find((s) => s.event === 'start')?.ip).toBe(c.ip);
      expect(mine.find((s) => s.event === 'die')?.ip).toBe(c.ip);
      expect(destroy?.ip).toBe(c.ip);
    }
    await glue.stop();
  });

  it('a slow handler on one container does not hold up another container', async () => {
    const seen: Seen[] = [];
    const glue = recordingGlue(seen, { slowName: 'slow-one', slowMs: 4_000 });
    await glue.start();
    const slow = await engine.run({ name: 'slow-one' });
    const fast = await engine.run({ name: 'fast-one' });
    const fastStart = await waitFor(() => seen.find((s) => s.id === fast.id && s.event === 'start'), {
      timeoutMs: 10_000,
      what: 'fast start',
    });
    const slowStart = await waitFor(() => seen.find((s) => s.id === slow.id && s.event === 'start'), {
      timeoutMs: 15_000,
      what: 'slow start',
    });
    expect(fastStart.at).toBeLessThan(slowStart.at);
    await glue.stop();
  });

  it('stop() lets the handler in flight finish, then takes no more events', async () => {
    const seen: Seen[] = [];
    const glue = recordingGlue(seen, { slowName: 'in-flight', slowMs: 1_500 });
    await glue.start();
    const c = await engine.run({ name: 'in-flight' });
    await waitFor(() => seen.some((s) => s.id === c.id && s.event === 'create'), { timeoutMs: 10_000, what: 'create' });
    await new Promise((r) => setTimeout(r, 300));
    await glue.stop();
    expect(seen.some((s) => s.id === c.id && s.event === 'start')).toBe(true);
    const count = seen.length;
    await engine.cli(['rm', '-f', c.id]);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(seen.length).toBe(count);
  });
});
