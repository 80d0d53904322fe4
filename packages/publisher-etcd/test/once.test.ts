import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { contextFor, fakeAgent, writeHandlerIni } from '@glue/core/contract';
import type { RunMode } from '@glue/core';
import { EtcdPublishError, Publisher } from '../src/publisher.js';

describe('run once (glue -1) with etcd unreachable', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function handleNone(mode: RunMode): Promise<{ error: unknown; ms: number; ini: string }> {
    dir = mkdtempSync(join(tmpdir(), 'glue-etcd-once-'));
    const ini = writeHandlerIni(dir, 'publish.ini', {
      endpoints: '127.0.0.1:1',
      'host-id': 'h',
      'write-timeout': '1',
      'backoff-max': '0.2',
    });
    const agent = fakeAgent({ mode });
    const publisher = new Publisher(agent, ini.path, ini);
    await publisher.start();
    const started = Date.now();
    let error: unknown;
    try {
      await publisher.handle('none', '', contextFor(agent, 'none', ''));
    } catch (err) {
      error = err;
    } finally {
      await publisher.stop();
    }
    return { error, ms: Date.now() - started, ini: ini.path };
  }

  it('fails the none run with an EtcdPublishError naming the endpoints and the INI file', async () => {
    const { error, ms, ini } = await handleNone('once');
    expect(error).toBeInstanceOf(EtcdPublishError);
    const e = error as EtcdPublishError;
    expect(e.code).toBe('BACKEND_UNAVAILABLE');
    expect(e.handler).toBe('publish.ini');
    expect(e.file).toBe(ini);
    expect(e.endpoints).toEqual(['http://127.0.0.1:1']);
    expect(e.message).toContain('did not reach etcd at http://127.0.0.1:1 within 1 s');
    expect(e.message).toContain(`${ini} [params]`);
    // Bounded by write-timeout, not by the handler timeout.
    expect(ms).toBeLessThan(4000);
  });

  it('in the watch mode the none run goes on (etcd down must not fail Glue)', async () => {
    const { error } = await handleNone('watch');
    expect(error).toBeUndefined();
  });
});
