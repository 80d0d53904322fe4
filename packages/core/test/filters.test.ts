import { afterEach, describe, expect, it } from 'vitest';
import { filteredAgent, matchesFilter, parseFilter, type FilterKey } from '../src/filters.js';
import { fakeAgent, fakeContainer } from '../src/contract.js';
import { createGlue, type Glue, IniDocument } from '../src/index.js';
import { validateHandlerIni } from '../src/config-loader.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeEngine } from './fake-engine.js';

const parse = (values: Partial<Record<FilterKey, string>>) => parseFilter((k) => values[k]);

describe('parseFilter', () => {
  it('no only-* key: no filter', () => {
    expect(parse({})).toEqual({ filter: undefined, problems: [] });
  });

  it('says what is wrong with each bad entry', () => {
    const { filter, problems } = parse({
      'only-labels': 'ok, bad key=1',
      'only-names': 'web-*, no/slash',
      'only-networks': '',
      'only-projects': 'shop',
    });
    expect(filter).toBeUndefined();
    expect(problems).toEqual([
      { key: 'only-labels', reason: '"bad key=1" is not KEY or KEY=VALUE (a label key)' },
      { key: 'only-names', reason: '"no/slash" is not a container name or a glob of one (*, ?)' },
      { key: 'only-networks', reason: 'is empty: give one or more a network name, comma-separated' },
    ]);
  });
});

describe('matchesFilter', () => {
  const web = fakeContainer({
    name: 'web-1',
    labels: { tier: 'web', 'glue.enable': '', 'com.docker.compose.project': 'shop' },
  });
  const db = fakeContainer({ name: 'db', labels: { tier: 'db' } });
  it('all keys must match; within a key, any entry', () => {
    const { filter } = parse({
      'only-labels': 'glue.enable, tier=web',
      'only-names': 'api-*, web-?',
      'only-projects': 'shop,blog',
    });
    expect(matchesFilter(filter!, web)).toBe(true);
    expect(matchesFilter(filter!, db)).toBe(false);
    expect(matchesFilter(parse({ 'only-labels': 'tier=db' }).filter!, web)).toBe(false);
    expect(matchesFilter(parse({ 'only-names': 'web' }).filter!, web)).toBe(false);
    const onBridge = fakeContainer({ name: 'net', ip: '172.17.0.9' });
    expect(Object.keys(onBridge.NetworkSettings?.Networks ?? {})).toEqual(['bridge']);
    expect(matchesFilter(parse({ 'only-networks': 'front, bridge' }).filter!, onBridge)).toBe(true);
    expect(matchesFilter(parse({ 'only-networks': 'front' }).filter!, onBridge)).toBe(false);
    expect(matchesFilter(parse({ 'only-names': '*' }).filter!, undefined)).toBe(false);
  });

  it('the filtered agent hides the containers outside the filter', () => {
    const agent = fakeAgent();
    agent.put(web);
    agent.put(db);
    const view = filteredAgent(agent, parse({ 'only-labels': 'tier=web' }).filter!);
    expect(view.containers().map((c) => c.Id)).toEqual([web.Id]);
    expect(view.inspect(db.Id)).toBeUndefined();
    expect(view.inspect(web.Id)).toBe(web);
    expect(view.docker).toBe(agent.docker);
    expect(view.mode).toBe(agent.mode);
  });
});

describe('a filtered handler in Glue', () => {
  const glues: Glue[] = [];
  afterEach(async () => {
    await Promise.all(glues.splice(0).map((g) => g.stop()));
  });

  it('gets only the events of containers in its filter, and their die/destroy after they left it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glue-filter-'));
    writeFileSync(
      join(dir, 'rec.mjs'),
      'export class Rec { constructor(agent) { this.agent = agent; } handle(e, id) { globalThis.__glueFilterSeen.push(`${e} ${id}`); } }\n',
    );
    const { config, problems } = validateHandlerIni(
      new IniDocument(join(dir, 'f.ini'), '[handler]\nclass=./rec.mjs#Rec\nevents=all\nonly-labels=tier=web\n'),
    );
    expect(problems).toEqual([]);
    const seen: string[] = [];
    (globalThis as { __glueFilterSeen?: string[] }).__glueFilterSeen = seen;
    const engine = new FakeEngine();
    const glue = createGlue({ docker: engine.docker, configs: [config!] });
    glues.push(glue);
    await glue.start();
    await until(() => engine.streams.length === 1);
    const web = engine.add({ name: 'web', labels: { tier: 'web' } });
    const db = engine.add({ name: 'db', labels: { tier: 'db' } });
    engine.emit('start', web.Id);
    engine.emit('start', db.Id);
    engine.emit('die', db.Id);
    await until(() => seen.length >= 1);
    await glue.idle();
    // web leaves the filter (as a container leaves a network): its die and destroy still come.
    web.Config.Labels = { tier: 'gone' };
    engine.emit('die', web.Id);
    engine.emit('destroy', web.Id);
    await until(() => seen.length >= 3);
    await glue.idle();
    expect(seen).toEqual([`start ${web.Id}`, `die ${web.Id}`, `destroy ${web.Id}`]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a bad only-* key is a config problem with its line', () => {
    const { problems } = validateHandlerIni(
      new IniDocument('/x/f.ini', '[handler]\nclass=./h.js#H\nevents=all\nonly-names=a/b\n'),
    );
    expect(problems).toEqual([
      expect.objectContaining({
        line: 4,
        section: 'handler',
        key: 'only-names',
        message: expect.stringMatching(/"a\/b" is not a container name/),
      }),
    ]);
  });
});

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
