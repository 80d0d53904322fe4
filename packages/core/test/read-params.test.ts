/** One way to read [params]: typed values, or one ParamError with every bad and unknown key. */
import { describe, expect, it } from 'vitest';
import { ParamError } from '../src/errors.js';
import { param, readParams } from '../src/read-params.js';

const spec = {
  mode: param.oneOf(['managed', 'external', 'file'], 'external'),
  timeout: param.number({ default: 30, min: 0.1, max: 600, unit: 'seconds', scale: 1000 }),
  enabled: param.boolean(true),
  name: param.string({ required: 'name the thing', pattern: /^[a-z]+$/, describe: 'lower-case letters' }),
};

describe('readParams', () => {
  it('typed values with defaults; empty counts as absent', () => {
    expect(readParams('x.ini', { name: 'abc', timeout: '' }, spec)).toEqual({
      mode: 'external',
      timeout: 30_000,
      enabled: true,
      name: 'abc',
    });
    expect(readParams('x.ini', { name: 'abc', mode: 'file', timeout: '1.5', enabled: 'OFF' }, spec)).toEqual({
      mode: 'file',
      timeout: 1500,
      enabled: false,
      name: 'abc',
    });
  });

  it('every problem at once, unknown keys with a suggestion, each with its key', () => {
    let caught: unknown;
    try {
      readParams('x.ini', { mode: 'magic', timeout: '0.01', enabled: 'maybe', colour: 'blue', nmae: 'x' }, spec);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ParamError);
    expect((caught as ParamError).problems).toEqual([
      { key: 'colour', reason: expect.stringMatching(/^unknown key; known keys: mode, timeout, enabled, name$/) },
      { key: 'nmae', reason: expect.stringMatching(/^unknown key \(did you mean name\?\)/) },
      { key: 'mode', reason: '"magic" is not managed, external or file' },
      { key: 'timeout', reason: '"0.01" is not a number of seconds from 0.1 to 600' },
      { key: 'enabled', reason: '"maybe" is not a boolean (use 1/yes/true/on or 0/no/false/off)' },
      { key: 'name', reason: 'missing: name the thing' },
    ]);
    expect(() => readParams('x.ini', { name: 'ABC' }, spec)).toThrow(/name: "ABC" is not lower-case letters/);
  });

  it('allowUnknown passes other keys by', () => {
    expect(readParams('x.ini', { name: 'a', 'demo-option': 'v' }, spec, { allowUnknown: true }).name).toBe('a');
  });
});
