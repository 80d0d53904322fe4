/**
 * The INI shown to users (examples/lb's lb.ini, the README snippet) stays valid when a commented
 * param is uncommented: Glue's reader keeps an inline `;` comment as part of the value (as Python's
 * ConfigParser does by default), so comments must sit on their own lines.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IniDocument } from '@glue/core';
import { parseHaproxyParams } from '../src/options.js';

const read = (rel: string): string => readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8');
/** Every `; key=value` line turned into `key=value` (the later of a key wins, as when a user edits it). */
const uncommented = (text: string): string => text.replace(/^; ?([a-z][a-z-]*=)/gm, '$1');

describe('INI examples', () => {
  it('examples/lb lb.ini: every param, commented or not, has a clean value and passes validation', () => {
    const text = read('../../../examples/lb/docker-glue.d/lb.ini');
    for (const source of [text, uncommented(text)]) {
      const ini = new IniDocument('lb.ini', source);
      const params = ini.section('params');
      for (const [key, value] of Object.entries(params)) expect(value, key).not.toMatch(/;/);
      // The template and certs-dir must exist to pass; the rest is checked as written.
      const { template: _template, 'certs-dir': _certs, ...rest } = params;
      expect(() => parseHaproxyParams('lb', rest, '/tmp')).not.toThrow();
      expect(ini.section('handler').class).toBe('@glue/handler-haproxy#HAProxyHandler');
    }
  });

  it('the README snippets have no inline comments', () => {
    const readme = read('../README.md');
    const blocks = [...readme.matchAll(/```ini\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    expect(blocks.length).toBeGreaterThan(0);
    for (const block of blocks) {
      const ini = new IniDocument('README.md', block);
      for (const name of ['handler', 'params'])
        for (const [key, value] of Object.entries(ini.section(name))) expect(value, key).not.toMatch(/;/);
    }
  });
});
