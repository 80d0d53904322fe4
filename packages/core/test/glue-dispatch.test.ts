import { afterEach, describe, expect, it } from 'vitest';
import { type Agent, createGlue, type Glue, type Handler, type HandlerContext, type HandlerRun } from '../src/index.js';
import { captureLogger } from '../src/contract.js';
import { FakeEngine } from './fake-engine.js';

type Call = { handler: string; event: string; id: string; labels?: Record<string, string> };

function recorder(
  name: string,
  calls: Call[],
  behaviour: (event: string) => Promise<void> | void = () => undefined,
): Handler {
  return {
    async handle(event: string, id: string, ctx: HandlerContext) {
      calls.push({ handler: name, event, id, labels: ctx.container?.Config.Labels });
      await behaviour(event);
    },
  };
}

const glues: Glue[] = [];
afterEach(async () => {
  await Promise.all(glues.splice(0).map((g) => g.stop()));
});

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('Glue dispatch', () => {
  it('stop() straight after start(), while the engine is still being listed, returns promptly', async () => {
    const engine = new FakeEngine();
    for (let i = 0; i < 20; i++) engine.add({});
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        { name: 'a.ini', events: ['none', 'all'], handler: { handle: () => new Promise((r) => setTimeout(r, 50)) } },
      ],
    });
    await glue.start();
    const started = performance.now();
    await glue.stop();
    // Before, the event stream opened after the stop began was never closed and stop() never returned.
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('tells handlers the run mode through agent.mode: once for runOnce(), watch for start()', async () => {
    const seen: Array<string | undefined> = [];
    const spy = (agent: Agent): Handler => ({
      start: async () => void seen.push(agent.mode),
      handle: async () => void seen.push(agent.mode),
    });
    const once = createGlue({
      docker: new FakeEngine().docker,
      handlers: [{ name: 'a.ini', events: ['none'], handler: spy }],
    });
    expect(once.agent.mode).toBeUndefined();
    await once.runOnce();
    const watch = createGlue({
      docker: new FakeEngine().docker,
      noneDebounceMs: 10,
      handlers: [{ name: 'a.ini', events: ['none'], handler: spy }],
    });
    glues.push(watch);
    await watch.start();
    await until(() => seen.length === 4);
    expect(seen).toEqual(['once', 'once', 'watch', 'watch']);
  });

  it('fires none once at start-up with an empty id, then real events; all never matches none', async () => {
    const engine = new FakeEngine();
    const calls: Call[] = [];
    const glue = createGlue({
      docker: engine.docker,
      noneDebounceMs: 10,
      handlers: [
        { name: 'a.ini', events: ['none'], handler: recorder('a', calls) },
        { name: 'b.ini', events: ['all'], handler: recorder('b', calls) },
      ],
    });
    glues.push(glue);
    await glue.start();
    await until(() => calls.length === 1);
    expect(calls[0]).toMatchObject({ handler: 'a', event: 'none', id: '' });
    const c = engine.add({ labels: { x: 'y' } });
    engine.emit('start', c.Id);
    await until(() => calls.length === 2);
    expect(calls[1]).toMatchObject({ handler: 'b', event: 'start', id: c.Id, labels: { x: 'y' } });
  });

  it('holds container events until the start-up none run has finished', async () => {
    const engine = new FakeEngine();
    const calls: Call[] = [];
    let release: () => void = () => undefined;
    const slowNone = new Promise<void>((r) => (release = r));
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        {
          name: 'a.ini',
          events: ['none', 'start'],
          handler: recorder('a', calls, (e) => (e === 'none' ? slowNone : undefined)),
        },
      ],
    });
    glues.push(glue);
    const c = engine.add({});
    await glue.start();
    await until(() => calls.length === 1);
    engine.emit('start', c.Id);
    await new Promise((r) => setTimeout(r, 100));
    expect(calls.map((x) => x.event)).toEqual(['none']);
    release();
    await until(() => calls.length === 2);
    expect(calls[1]).toMatchObject({ event: 'start', id: c.Id });
  });

  it('runs a handler once per event even if it lists the event and all; in file-name order', async () => {
    const engine = new FakeEngine();
    const calls: Call[] = [];
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        { name: '10-first.ini', events: ['start', 'all', 'start'], handler: recorder('first', calls) },
        { name: '20-second.ini', events: ['start'], handler: recorder('second', calls) },
      ],
    });
    glues.push(glue);
    await glue.start();
    await until(() => engine.streams.length === 1);
    const c = engine.add();
    engine.emit('start', c.Id);
    await until(() => calls.length >= 2);
    await glue.idle();
    expect(calls.map((x) => x.handler)).toEqual(['first', 'second']);
  });

  it('keeps the last inspection for die and destroy handlers, then forgets the container', async () => {
    const engine = new FakeEngine();
    const calls: Call[] = [];
    const glue = createGlue({
      docker: engine.docker,
      handlers: [{ name: 'a.ini', events: ['die', 'destroy'], handler: recorder('a', calls) }],
    });
    glues.push(glue);
    const c = engine.add({ labels: { glue_http_80_host: 'a.example.com' } });
    await glue.start();
    await until(() => engine.streams.length === 1);
    await until(() => glue.agent.inspect(c.Id) !== undefined);
    engine.containers.delete(c.Id); // gone from the engine before the events are handled
    engine.emit('die', c.Id);
    engine.emit('destroy', c.Id);
    await until(() => calls.length === 2);
    await glue.idle();
    expect(calls.map((x) => [x.event, x.labels?.glue_http_80_host])).toEqual([
      ['die', 'a.example.com'],
      ['destroy', 'a.example.com'],
    ]);
    expect(glue.agent.inspect(c.Id)).toBeUndefined();
  });

  it('a throwing handler does not stop the next handler nor later events; the run is reported', async () => {
    const engine = new FakeEngine();
    const calls: Call[] = [];
    const runs: HandlerRun[] = [];
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        {
          name: 'a-bad.ini',
          events: ['all'],
          handler: recorder('bad', calls, () => {
            throw new Error('boom');
          }),
        },
        { name: 'b-good.ini', events: ['all'], handler: recorder('good', calls) },
      ],
    });
    glue.on('handler', (r) => runs.push(r));
    glues.push(glue);
    await glue.start();
    await until(() => engine.streams.length === 1);
    const c = engine.add();
    engine.emit('start', c.Id);
    engine.emit('die', c.Id);
    await until(() => calls.length === 4);
    await glue.idle();
    expect(calls.filter((x) => x.handler === 'good').map((x) => x.event)).toEqual(['start', 'die']);
    expect(runs.filter((r) => !r.ok).map((r) => [r.handler, (r.error as Error).message])).toEqual([
      ['a-bad.ini', 'boom'],
      ['a-bad.ini', 'boom'],
    ]);
  });

  it('a slow handler is bounded by its timeout; other containers do not wait for it', async () => {
    const engine = new FakeEngine();
    const calls: Call[] = [];
    const slowIds = new Set<string>();
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        {
          name: 'slow.ini',
          events: ['start'],
          timeoutMs: 300,
          handler: {
            handle: async (event, id) => {
              calls.push({ handler: 'slow', event, id });
              if (slowIds.has(id)) await new Promise((r) => setTimeout(r, 5000));
            },
          },
        },
        { name: 'z.ini', events: ['start'], handler: recorder('z', calls) },
      ],
    });
    glues.push(glue);
    await glue.start();
    await until(() => engine.streams.length === 1);
    const slow = engine.add();
    const fast = engine.add();
    slowIds.add(slow.Id);
    engine.emit('start', slow.Id);
    engine.emit('start', fast.Id);
    await until(() => calls.some((x) => x.handler === 'z' && x.id === fast.Id), 1000);
    expect(calls.some((x) => x.handler === 'z' && x.id === slow.Id)).toBe(false);
    await until(() => calls.some((x) => x.handler === 'z' && x.id === slow.Id), 2000);
  });

  it('events of one container are handled in order', async () => {
    const engine = new FakeEngine();
    const calls: Call[] = [];
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        {
          name: 'a.ini',
          events: ['all'],
          handler: recorder('a', calls, async (e) => {
            if (e === 'create') await new Promise((r) => setTimeout(r, 50));
          }),
        },
      ],
    });
    glues.push(glue);
    await glue.start();
    await until(() => engine.streams.length === 1);
    const c = engine.add();
    for (const a of ['create', 'start', 'die', 'destroy']) engine.emit(a, c.Id);
    await until(() => calls.length === 4);
    expect(calls.map((x) => x.event)).toEqual(['create', 'start', 'die', 'destroy']);
  });

  it('triggers-none: a burst of events gives one coalesced none', async () => {
    const engine = new FakeEngine();
    const calls: Call[] = [];
    const glue = createGlue({
      docker: engine.docker,
      noneDebounceMs: 100,
      handlers: [
        { name: 'a.ini', events: ['start'], triggersNone: true, handler: recorder('a', calls) },
        { name: 'b.ini', events: ['none'], handler: recorder('b', calls) },
      ],
    });
    glues.push(glue);
    await glue.start();
    await until(() => calls.length === 1); // the start-up none
    for (let i = 0; i < 10; i++) engine.emit('start', engine.add().Id);
    await until(() => calls.filter((x) => x.event === 'start').length === 10);
    await new Promise((r) => setTimeout(r, 300));
    await glue.idle();
    expect(calls.filter((x) => x.event === 'none').length).toBe(2);
  });

  it('reconnects after the stream ends, resumes with since, and delivers what the stream missed', async () => {
    const engine = new FakeEngine();
    const calls: Call[] = [];
    const glue = createGlue({
      docker: engine.docker,
      engine: { backoffInitialMs: 20, backoffMaxMs: 50 },
      handlers: [{ name: 'a.ini', events: ['start', 'die', 'destroy'], handler: recorder('a', calls) }],
    });
    glues.push(glue);
    const gone = engine.add({ name: 'gone' });
    const dying = engine.add({ name: 'dying' });
    await glue.start();
    await until(() => engine.streams.length === 1);
    const first = engine.add({ name: 'first' });
    engine.emit('start', first.Id);
    await until(() => calls.length === 1);
    engine.up = false;
    engine.drop();
    await new Promise((r) => setTimeout(r, 100));
    // While Glue was away: one container removed, one died, one started.
    engine.containers.delete(gone.Id);
    engine.containers.set(dying.Id, { ...dying, State: { ...dying.State, Running: false, Status: 'exited' } });
    engine.add({ name: 'born' });
    engine.up = true;
    await until(() => engine.streams.length === 2, 3000);
    expect(String(engine.eventQueries[1]?.since)).toMatch(/^\d+\.\d{9}$/);
    await until(() => calls.length === 5, 3000);
    await glue.idle();
    expect(
      calls
        .slice(1)
        .map((x) => `${x.event}:${glue.agent.inspect(x.id)?.Name ?? 'forgotten'}`)
        .sort(),
    ).toEqual(['destroy:forgotten', 'die:/dying', 'die:forgotten', 'start:/born'].sort());
  });

  it("a handler's own runTimeoutMs raises Glue's per-run bound; without it the configured bound applies", async () => {
    const engine = new FakeEngine();
    const slow = (extra: Partial<Handler>): Handler => ({
      handle: () => new Promise<void>((r) => setTimeout(r, 250)),
      ...extra,
    });
    const runs: HandlerRun[] = [];
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        { name: 'own.ini', events: ['start'], timeoutMs: 100, handler: slow({ runTimeoutMs: 1_000 }) },
        { name: 'plain.ini', events: ['start'], timeoutMs: 100, handler: slow({}) },
      ],
    });
    glues.push(glue);
    glue.on('handler', (run) => runs.push(run));
    await glue.start();
    await until(() => engine.streams.length === 1);
    engine.emit('start', engine.add().Id);
    await until(() => runs.length === 2);
    expect(runs.map((r) => [r.handler, r.ok, r.timedOut])).toEqual([
      ['own.ini', true, false],
      ['plain.ini', false, true],
    ]);
  });

  it('lifecycle: new -> watching -> stopping -> stopped; runOnce() after start(), start() twice or after stop() throw INVALID_STATE', async () => {
    const engine = new FakeEngine();
    let starts = 0;
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        { name: 'h.ini', events: ['start'], handler: { handle: () => undefined, start: () => void (starts += 1) } },
      ],
    });
    glues.push(glue);
    expect(glue.state).toBe('new');
    await glue.start();
    expect(glue.state).toBe('watching');
    await expect(glue.runOnce()).rejects.toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringMatching(/^runOnce\(\) while watching: a Glue runs once or watches/),
    });
    await expect(glue.start()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    expect(glue.state).toBe('watching');
    const stopping = glue.stop();
    expect(glue.state).toBe('stopping');
    await stopping;
    expect(glue.state).toBe('stopped');
    await glue.stop();
    await expect(glue.start()).rejects.toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringMatching(/^start\(\) while stopped/),
    });
    expect(starts).toBe(1);
  });

  it('a serial handler runs one run at a time, in order, even for different containers', async () => {
    const engine = new FakeEngine();
    let running = 0;
    let most = 0;
    const order: string[] = [];
    const handler: Handler = {
      serial: true,
      handle: async (event, id) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 30));
        order.push(`${event}:${id.slice(0, 4)}`);
        running -= 1;
      },
    };
    const glue = createGlue({ docker: engine.docker, handlers: [{ name: 's.ini', events: ['start'], handler }] });
    glues.push(glue);
    await glue.start();
    await until(() => engine.streams.length === 1);
    const ids = [engine.add().Id, engine.add().Id, engine.add().Id];
    for (const id of ids) engine.emit('start', id);
    await until(() => order.length === 3, 3000);
    expect(most).toBe(1);
    expect(order).toEqual(ids.map((id) => `start:${id.slice(0, 4)}`));
  });

  it('runOnce() twice: the second throws, start hooks ran once', async () => {
    const engine = new FakeEngine();
    let starts = 0;
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        { name: 'h.ini', events: ['none'], handler: { handle: () => undefined, start: () => void (starts += 1) } },
      ],
    });
    glues.push(glue);
    await glue.runOnce();
    expect(glue.state).toBe('stopped');
    await expect(glue.runOnce()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    expect(starts).toBe(1);
  });

  it("a handler that throws new Error('HANDLER_TIMEOUT') has failed, not timed out (no logic reads message text)", async () => {
    const engine = new FakeEngine();
    const runs: HandlerRun[] = [];
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        {
          name: 'liar.ini',
          events: ['start'],
          timeoutMs: 5000,
          handler: { handle: () => Promise.reject(new Error('HANDLER_TIMEOUT')) },
        },
      ],
    });
    glues.push(glue);
    glue.on('handler', (run) => runs.push(run));
    await glue.start();
    await until(() => engine.streams.length === 1);
    engine.emit('start', engine.add().Id);
    await until(() => runs.length === 1);
    expect(runs.map((r) => [r.ok, r.timedOut, (r.error as Error).message])).toEqual([
      [false, false, 'HANDLER_TIMEOUT'],
    ]);
  });

  it('a failing start hook stops the handlers already started, once, and start() rejects naming the handler', async () => {
    const engine = new FakeEngine();
    const hooks: string[] = [];
    const hooked = (name: string, fail = false): Handler => ({
      handle: () => undefined,
      start: () => {
        hooks.push(`start ${name}`);
        if (fail) throw new Error('no backend');
      },
      stop: () => void hooks.push(`stop ${name}`),
    });
    const glue = createGlue({
      docker: engine.docker,
      handlers: [
        { name: 'a.ini', events: ['start'], handler: hooked('a') },
        { name: 'b.ini', events: ['start'], handler: hooked('b') },
        { name: 'c.ini', events: ['start'], handler: hooked('c', true) },
        { name: 'd.ini', events: ['start'], handler: hooked('d') },
      ],
    });
    await expect(glue.start()).rejects.toThrow(/\[c\.ini\] start failed: no backend/);
    await glue.stop();
    expect(hooks).toEqual(['start a', 'start b', 'start c', 'stop b', 'stop a']);
  });

  it('stop() waits for handlers in flight and calls stop hooks', async () => {
    const engine = new FakeEngine();
    let finished = false;
    let stopped = false;
    const { logger, lines } = captureLogger();
    const glue = createGlue({
      docker: engine.docker,
      logger,
      handlers: [
        {
          name: 'a.ini',
          events: ['start'],
          handler: {
            handle: async () => {
              await new Promise((r) => setTimeout(r, 200));
              finished = true;
            },
            stop: () => {
              stopped = true;
            },
          },
        },
      ],
    });
    await glue.start();
    await until(() => engine.streams.length === 1);
    const c = engine.add({ name: 'web1' });
    engine.emit('start', c.Id);
    await new Promise((r) => setTimeout(r, 30));
    await glue.stop();
    expect(finished).toBe(true);
    expect(stopped).toBe(true);
    // The shutdown line names what it waits for.
    expect(lines.map((l) => l.msg)).toContain(
      'shutdown: waiting up to 10 s for 1 handler run(s) in flight: [a.ini] start web1',
    );
  });

  it('stop() does not abort the signals of runs in flight while they finish within the bound', async () => {
    const engine = new FakeEngine();
    const seen: { run: boolean; agent: boolean }[] = [];
    let agentSignal: AbortSignal | undefined;
    const glue = createGlue({
      docker: engine.docker,
      shutdownTimeoutMs: 5_000,
      handlers: [
        {
          name: 'a.ini',
          events: ['start'],
          handler: (agent) => {
            agentSignal = agent.signal;
            return {
              handle: async (_e, _id, ctx) => {
                await new Promise((r) => setTimeout(r, 300));
                seen.push({ run: ctx.signal.aborted, agent: agent.signal.aborted });
              },
            };
          },
        },
      ],
    });
    await glue.start();
    await until(() => engine.streams.length === 1);
    engine.emit('start', engine.add().Id);
    await new Promise((r) => setTimeout(r, 30));
    const t0 = Date.now();
    await glue.stop();
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(seen).toEqual([{ run: false, agent: false }]);
    expect(agentSignal?.aborted).toBe(true);
  });

  it('many containers in flight at once: each run gets its own signal, aborted only when the shutdown bound runs out, no listener warning', async () => {
    const engine = new FakeEngine();
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    const signals: AbortSignal[] = [];
    const glue = createGlue({
      docker: engine.docker,
      shutdownTimeoutMs: 300,
      handlers: [
        {
          name: 'a.ini',
          events: ['start'],
          handler: {
            handle: (_e, _id, ctx) =>
              new Promise<void>((resolve) => {
                signals.push(ctx.signal);
                ctx.signal.addEventListener('abort', () => resolve());
              }),
          },
        },
      ],
    });
    try {
      await glue.start();
      await until(() => engine.streams.length === 1);
      for (let i = 0; i < 25; i++) engine.emit('start', engine.add().Id);
      await until(() => signals.length === 25);
      expect(signals.some((s) => s.aborted)).toBe(false);
      const t0 = Date.now();
      const stopping = glue.stop();
      await new Promise((r) => setTimeout(r, 150));
      // Within the bound the runs are left alone.
      expect(signals.some((s) => s.aborted)).toBe(false);
      await stopping;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      expect(signals.every((s) => s.aborted)).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
