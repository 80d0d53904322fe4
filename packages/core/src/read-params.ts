/**
 * One way to read `[params]`: a spec of typed rules, every bad key reported (ParamError.of, one line
 * each with its file and line), unknown keys refused with a suggestion unless the handler passes
 * them on (the exec handler hands them to its script).
 */
import { parseBoolean } from './config-loader.js';
import { ParamError, type ParamProblem, quote } from './errors.js';
import { unknownKeyReason } from './params.js';

/** A rule's verdict on one key's raw value (undefined: the key is absent or empty); several reasons are several problems. */
export type ParamRule<T> = (
  raw: string | undefined,
) => { ok: true; value: T } | { ok: false; reason: string | readonly string[] };

export type ParamValues<S extends Record<string, ParamRule<unknown>>> = {
  [K in keyof S]: S[K] extends ParamRule<infer T> ? T : never;
};

const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
const bad = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

/** The rules every handler needs; a handler may write its own `ParamRule` for anything else. */
export const param = {
  /** Text; `required` refuses an absent or empty value with `missing` as the reason. */
  string(
    options: { default?: string; required?: string; pattern?: RegExp; describe?: string } = {},
  ): ParamRule<string> {
    return (raw) => {
      if (raw === undefined)
        return options.required !== undefined ? bad(`missing: ${options.required}`) : ok(options.default ?? '');
      if (options.pattern && !options.pattern.test(raw))
        return bad(`${quote(raw, 60)} is not ${options.describe ?? `of the form ${String(options.pattern)}`}`);
      return ok(raw);
    };
  },
  /** Optional text that `check` finds fault with (its reason) or not (undefined). */
  check(check: (value: string) => string | undefined): ParamRule<string | undefined> {
    return (raw) => {
      if (raw === undefined) return ok(undefined);
      const reason = check(raw);
      return reason === undefined ? ok(raw) : bad(`${quote(raw, 60)}: ${reason}`);
    };
  },
  /** A decimal number of `unit` from `min` to `max`, returned multiplied by `scale` (seconds -> ms: 1000). */
  number(options: { default: number; min: number; max: number; unit?: string; scale?: number }): ParamRule<number> {
    const scale = options.scale ?? 1;
    const unit = options.unit ? ` ${options.unit}` : '';
    return (raw) => {
      if (raw === undefined) return ok(options.default * scale);
      const n = Number(raw);
      if (!/^\d+(\.\d+)?$/.test(raw) || n < options.min || n > options.max)
        return bad(
          `${quote(raw, 40)} is not a number${unit ? ` of${unit}` : ''} from ${options.min} to ${options.max}`,
        );
      return ok(scale === 1 ? n : Math.round(n * scale));
    };
  },
  /** 1/yes/true/on or 0/no/false/off, any case. */
  boolean(fallback: boolean): ParamRule<boolean> {
    return (raw) => {
      if (raw === undefined) return ok(fallback);
      const value = parseBoolean(raw);
      if (value !== undefined) return ok(value);
      return bad(`${quote(raw, 40)} is not a boolean (use 1/yes/true/on or 0/no/false/off)`);
    };
  },
  /** One of `values`. */
  oneOf<const V extends string>(values: readonly V[], fallback: V): ParamRule<V> {
    return (raw) => {
      if (raw === undefined) return ok(fallback);
      return (values as readonly string[]).includes(raw)
        ? ok(raw as V)
        : bad(`${quote(raw, 40)} is not ${values.slice(0, -1).join(', ')} or ${values[values.length - 1] ?? ''}`);
    };
  },
};

/**
 * Checks `params` (trimmed; empty counts as absent) by `spec`: the typed values of the good keys (a
 * bad key's value is left out) and a problem per bad key, and per unknown key unless `allowUnknown`.
 */
export function checkParams<S extends Record<string, ParamRule<unknown>>>(
  params: Readonly<Record<string, string>>,
  spec: S,
  options: { allowUnknown?: boolean } = {},
): { values: Partial<ParamValues<S>>; problems: ParamProblem[] } {
  const problems: ParamProblem[] = [];
  const known = Object.keys(spec);
  if (!options.allowUnknown)
    for (const key of Object.keys(params))
      if (!Object.hasOwn(spec, key)) problems.push({ key, reason: unknownKeyReason(key, known) });
  const values: Record<string, unknown> = {};
  for (const [key, rule] of Object.entries(spec)) {
    const raw = params[key]?.trim();
    const verdict = rule(raw === '' ? undefined : raw);
    if (verdict.ok) values[key] = verdict.value;
    else
      for (const reason of typeof verdict.reason === 'string' ? [verdict.reason] : verdict.reason)
        problems.push({ key, reason });
  }
  return { values: values as Partial<ParamValues<S>>, problems };
}

/** `checkParams`, throwing one ParamError with every problem; the typed values otherwise. */
export function readParams<S extends Record<string, ParamRule<unknown>>>(
  file: string,
  params: Readonly<Record<string, string>>,
  spec: S,
  options: { allowUnknown?: boolean } = {},
): ParamValues<S> {
  const { values, problems } = checkParams(params, spec, options);
  if (problems.length > 0) throw ParamError.of(file, problems);
  return values as ParamValues<S>;
}
