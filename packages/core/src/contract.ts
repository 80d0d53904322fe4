/**
 * The handler contract test suite. Any handler package, ours or a third party's, runs it with one call
 * from a vitest test file:
 *
 *   import { handlerContractSuite } from '@glue/core/contract';
 *   handlerContractSuite({ name: 'MyHandler', handlerClass: MyHandler, params: { foo: 'bar' } });
 */
import { createHook } from 'node:async_hooks';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { validateHandlerIni } from './config-loader.js';
import { fakeAgent, fakeContainer, type FakeAgent } from './fake-agent.js';
import { type Handler, type HandlerClass, type HandlerContext, isHandlerClass } from './handler.js';
import type { ContainerInspectInfo } from 'dockerode';
import { IniDocument } from './ini-document.js';
import { type GlueEvent, noneEvent } from './events.js';
import { createLogger, type Logger, type LogLevel } from './logger.js';

export { fakeAgent, fakeContainer };
export type { FakeAgent, FakeContainerSpec } from './fake-agent.js';

export interface ContractSuiteOptions {
  /** Shown in the test names. */
  name: string;
  handlerClass: HandlerClass;
  /** `[params]` of the INI file the handler is constructed with. */
  params?: Record<string, string>;
  /** Events to send; default none, start, die, destroy. */
  events?: string[];
  /** Called before each construction, e.g. to create files the params point at. */
  setup?: (dir: string) => void;
  /** Longest a handle() of the fake world may take. Default 10 s. */
  timeoutMs?: number;
  /** Longest handle() may take to return once the daemon is stopping (its signal aborted). Default 1 s. */
  abortBoundMs?: number;
  /**
   * What the handler did, checked after it handled `events` for the labelled container
   * (`contract-web`, `glue_http_80_host=contract.example.com`, 127.0.0.1): the script wrote its line,
   * the config names the server. Throw (or fail an expect) when it did not. Without it the suite
   * cannot tell a handler that works from one that does nothing.
   */
  effect?: (world: ContractWorld) => void | Promise<void>;
  /**
   * Switches, as keyv's test suite has them, for handlers that rightly do something else: `ghostEventFailure`
   * lets die/destroy of a container the handler never saw fail (with an Error that says why).
   */
  allow?: { ghostEventFailure?: boolean };
}

/** What `effect` sees. */
export interface ContractWorld {
  agent: FakeAgent;
  handler: Handler;
  /** The temp dir the INI file (and `setup`'s files) are in. */
  dir: string;
  /** The labelled container the events were about. */
  container: ContainerInspectInfo;
}

/** Writes an INI file for a handler under test and returns its parsed document. */
export function writeHandlerIni(
  dir: string,
  name: string,
  params: Record<string, string>,
  events = 'all,none',
): IniDocument {
  const file = join(dir, name);
  const lines = ['[handler]', 'class=./contract-under-test.js#Handler', `events=${events}`, '', '[params]'];
  for (const [k, v] of Object.entries(params)) lines.push(`${k}=${v}`);
  const text = `${lines.join('\n')}\n`;
  writeFileSync(file, text);
  return new IniDocument(file, text);
}

/** One JSON log line, as pino writes it. */
export interface CapturedLogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface CapturedLogger {
  logger: Logger;
  /** Every line so far, in order. */
  lines: CapturedLogLine[];
  /** The lines at level error (50) and above. */
  errors: () => CapturedLogLine[];
}

/**
 * A logger whose lines a test can read and assert on (what an operator would see).
 * `GLUE_TEST_LOG=1` also copies them to stderr.
 */
export function captureLogger(level: LogLevel = 'debug'): CapturedLogger {
  const lines: CapturedLogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as CapturedLogLine);
      if (process.env.GLUE_TEST_LOG) process.stderr.write(chunk);
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines, errors: () => lines.filter((l) => l.level >= 50) };
}

/** A handler context for a direct handle() call in tests. */
export function contextFor(agent: FakeAgent, action: string, id: string): HandlerContext {
  const event: GlueEvent = id === '' ? noneEvent() : { action, id, attributes: {}, timeNano: 0n };
  return { event, container: agent.inspect(id), signal: agent.signal };
}

/**
 * Watches the timers created from now on: `left()` is how many of them are still pending (neither
 * fired nor cleared), so a check can tell what start() left behind from timers of anything else.
 */
function watchTimers(): { left: () => number; stop: () => void } {
  const pending = new Set<number>();
  const hook = createHook({
    init(asyncId, type) {
      if (type === 'Timeout') pending.add(asyncId);
    },
    destroy(asyncId) {
      pending.delete(asyncId);
    },
  }).enable();
  return { left: () => pending.size, stop: () => void hook.disable() };
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The contract, one check per meaning. Each throws when the handler breaks it; `handlerContractSuite`
 * runs them as tests, and core's own tests run them against deliberately broken handlers, which must
 * fail (a suite that cannot fail proves nothing).
 */
export function contractChecks(options: ContractSuiteOptions, dir: string) {
  const events = options.events ?? ['none', 'start', 'die', 'destroy'];
  const abortBound = options.abortBoundMs ?? 1000;
  const make = (agent: FakeAgent): Handler => {
    options.setup?.(dir);
    const ini = writeHandlerIni(dir, 'contract.ini', options.params ?? {});
    expect(validateHandlerIni(ini).problems).toEqual([]);
    return new options.handlerClass(agent, ini.path, ini);
  };
  const labelled = (): ContainerInspectInfo =>
    fakeContainer({ name: 'contract-web', ip: '127.0.0.1', labels: { glue_http_80_host: 'contract.example.com' } });

  return {
    shape(): void {
      if (!isHandlerClass(options.handlerClass))
        throw new Error(
          `${options.name} is not a handler class: it needs a constructor (agent, iniFile, ini) and handle(event, containerId)`,
        );
    },

    constructsQuietly(): void {
      const agent = fakeAgent();
      make(agent);
      if (agent.calls.length > 0) throw new Error(`the constructor called the engine: ${agent.calls.join(', ')}`);
    },

    /** start(), stop(), stop() again: no error, nothing left running, no engine call after stop(). */
    async startStop(): Promise<void> {
      const agent = fakeAgent();
      const h = make(agent);
      const timers = watchTimers();
      let left: number;
      try {
        await h.start?.();
        await h.stop?.();
        await h.stop?.();
        // Node reports a cleared timer's end (the async hook's destroy) a turn of the loop later.
        await new Promise((r) => setImmediate(r));
      } finally {
        left = timers.left();
        timers.stop();
      }
      const calls = agent.calls.length;
      await pause(150);
      if (agent.calls.length > calls)
        throw new Error(`the engine was called after stop(): ${agent.calls.slice(calls).join(', ')}`);
      if (left > 0) throw new Error(`${left} timer(s) still pending after stop(): start() left something behind`);
    },

    /** The labelled container through `events`, then `effect`. */
    async handlesEvents(): Promise<void> {
      const agent = fakeAgent();
      const container = labelled();
      agent.put(container);
      const h = make(agent);
      await h.start?.();
      try {
        for (const event of events) {
          const id = event === 'none' ? '' : container.Id;
          await h.handle(event, id, contextFor(agent, event, id));
        }
        await options.effect?.({ agent, handler: h, dir, container });
      } finally {
        await h.stop?.();
      }
    },

    /** die and destroy of a container the handler never saw (Glue started after it went) succeed. */
    async ghostEvents(): Promise<void> {
      const agent = fakeAgent();
      const h = make(agent);
      await h.start?.();
      const ghost = 'f'.repeat(64);
      try {
        for (const event of ['die', 'destroy']) {
          try {
            await h.handle(event, ghost, contextFor(agent, event, ghost));
          } catch (err) {
            if (!options.allow?.ghostEventFailure)
              throw new Error(
                `${event} of a container it never saw failed: ${err instanceof Error ? err.message : String(err)}`,
              );
            if (!(err instanceof Error) || err.message === '')
              throw new Error(`${event} of an unknown container failed without an Error that says why`);
          }
        }
      } finally {
        await h.stop?.();
      }
    },

    /** Once the daemon is stopping, handle() returns within the bound (it may refuse with an Error). */
    async honoursSignal(): Promise<void> {
      const agent = fakeAgent();
      const container = labelled();
      agent.put(container);
      const h = make(agent);
      await h.start?.();
      try {
        agent.shutdown();
        for (const [event, id] of [
          ['none', ''],
          ['start', container.Id],
        ] as const) {
          const started = Date.now();
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), abortBound)));
          const done = Promise.resolve(h.handle(event, id, contextFor(agent, event, id))).then(
            () => 'done' as const,
            () => 'done' as const,
          );
          const outcome = await Promise.race([done, late]);
          clearTimeout(timer);
          if (outcome === 'late')
            throw new Error(
              `handle(${event}) still running ${Date.now() - started} ms after the daemon's signal was aborted (bound ${abortBound} ms)`,
            );
        }
      } finally {
        await h.stop?.();
      }
    },
  };
}

export function handlerContractSuite(options: ContractSuiteOptions): void {
  const events = options.events ?? ['none', 'start', 'die', 'destroy'];
  const timeout = options.timeoutMs ?? 10_000;
  const dir = mkdtempSync(join(tmpdir(), 'glue-contract-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const check = contractChecks(options, dir);

  describe(`handler contract: ${options.name}`, () => {
    it('is a class with handle(event, containerId)', () => check.shape());
    it('constructs from (agent, iniFile, ini) without calling the engine', () => check.constructsQuietly());
    it(
      'start() then stop() twice: no error, nothing left running, no engine call after stop()',
      { timeout: timeout + 1000 },
      () => check.startStop(),
    );
    it(
      `handles ${events.join(', ')} for a labelled running container and for "none"${options.effect ? ', with the expected effect' : ''}`,
      { timeout: timeout + 1000 },
      () => check.handlesEvents(),
    );
    it(
      `die and destroy of a container it never saw ${options.allow?.ghostEventFailure ? 'fail only with an Error that says why' : 'succeed'}`,
      { timeout: timeout + 1000 },
      () => check.ghostEvents(),
    );
    it(
      `returns within ${options.abortBoundMs ?? 1000} ms once the daemon is stopping (signal aborted)`,
      { timeout: timeout + 1000 },
      () => check.honoursSignal(),
    );
  });
}
