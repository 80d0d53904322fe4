import { printable, quote } from './errors.js';

/** A line of an INI file Glue does not read, and why. */
export interface IniLineProblem {
  line: number;
  section?: string | undefined;
  key?: string | undefined;
  message: string;
}

/** Control characters, line/paragraph separators and bidi controls: never part of a line Glue reads. */
// eslint-disable-next-line no-control-regex -- finding them is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/;
const SECTION_NAME = /^[A-Za-z0-9_-]+$/;
const KEY = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * A parsed INI file and the line of every key, so problems can be reported as `file:line [section]
 * key`. Glue reads the subset of Python's ConfigParser that docker-glue's files use, strictly: every
 * line is blank, a comment (`#` or `;` first), a `[section]` header or `key=value`. Whatever
 * ConfigParser would refuse or read differently (a line without `=`, `key: value`, keys before the
 * first section, indented continuation lines, upper-case keys, text after `]`, control characters)
 * is a problem with its line (`problems`), and the line is not read. Values are the text after the
 * first `=`, trimmed; `;` and `#` in a value are part of it, as in ConfigParser. A UTF-8 BOM is
 * skipped; `\n`, `\r\n` and `\r` all end a line. Mirrors ConfigParser's reading API where docker-glue's
 * plugins used it (`ini.get('params', 'x')`, `ini.has_option(...)`), so ported handlers read the same.
 */
export class IniDocument {
  readonly path: string;
  readonly text: string;
  private readonly data = new Map<string, Map<string, string>>();
  private readonly lines = new Map<string, number>();
  /** Lines that are not read, with why. */
  readonly problems: readonly IniLineProblem[];
  /** Keys written more than once in one section, with their lines. */
  readonly duplicates: ReadonlyArray<{ section: string; key: string; lines: number[] }>;
  /** Section headers written more than once, with their lines. */
  readonly duplicateSections: ReadonlyArray<{ section: string; lines: number[] }>;

  constructor(path: string, text: string) {
    this.path = path;
    this.text = text;
    const problems: IniLineProblem[] = [];
    const keyLines = new Map<string, number[]>();
    const headerLines = new Map<string, number[]>();
    let section: string | undefined;
    const body = text.startsWith('\ufeff') ? text.slice(1) : text;
    body.split(/\r\n|\n|\r/).forEach((raw, index) => {
      const n = index + 1;
      const bad = (message: string, key?: string): void => void problems.push({ line: n, section, key, message });
      const control = CONTROL.exec(raw);
      if (control) {
        bad(
          `contains the control character U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} at column ${control.index + 1}; this line is not read`,
        );
        return;
      }
      const trimmed = raw.trim();
      if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;
      if (/^\s/.test(raw)) {
        bad(
          'indented line: Glue reads no multi-line values or indented keys (ConfigParser would add it to the value above); remove the indentation',
        );
        return;
      }
      if (trimmed.startsWith('[')) {
        const m = /^\[([^\]]*)\](.*)$/.exec(trimmed);
        if (!m) return bad(`section header ${quote(trimmed)} has no closing ]`);
        const name = m[1] ?? '';
        if (m[2] !== '')
          return bad(`text after the section header: ${quote(m[2] ?? '')}; comments go on their own line`);
        if (!SECTION_NAME.test(name)) return bad(`section name ${quote(name)} may hold only letters, digits, _ and -`);
        section = name;
        const seen = headerLines.get(name);
        if (seen) seen.push(n);
        else headerLines.set(name, [n]);
        if (!this.data.has(name)) this.data.set(name, new Map());
        if (!this.lines.has(`[${name}]`)) this.lines.set(`[${name}]`, n);
        return;
      }
      const eq = trimmed.indexOf('=');
      const colon = trimmed.indexOf(':');
      if (colon !== -1 && (eq === -1 || colon < eq)) {
        return bad(
          `${quote(trimmed, 60)}: ConfigParser would split this line at ':'; Glue reads key=value only, write ${printable(trimmed.slice(0, colon).trim())}=...`,
        );
      }
      if (eq === -1)
        return bad(
          `${quote(trimmed, 60)} is not key=value (a key alone is not read; write ${printable(trimmed)}=1 or remove it)`,
        );
      const key = trimmed.slice(0, eq).trim();
      const value = trimmed.slice(eq + 1).trim();
      if (key === '') return bad(`a line starting with = has no key (value ${quote(value, 60)})`);
      if (!KEY.test(key)) {
        const lower = key.toLowerCase();
        return bad(
          KEY.test(lower)
            ? `key ${quote(key)}: keys are lower-case (ConfigParser reads it as ${lower}); write ${lower}`
            : `key ${quote(key)} may hold only a-z, 0-9, _ and - (starting with a letter or digit)`,
          key,
        );
      }
      if (section === undefined) return bad(`${printable(key)}=... comes before the first [section]`, key);
      const id = `${section}\0${key}`;
      const at = keyLines.get(id);
      if (at) {
        at.push(n);
        return;
      }
      keyLines.set(id, [n]);
      this.lines.set(id, n);
      this.data.get(section)?.set(key, value);
    });
    this.problems = problems;
    this.duplicates = [...keyLines.entries()]
      .filter(([, at]) => at.length > 1)
      .map(([id, at]) => {
        const [s = '', key = ''] = id.split('\0');
        return { section: s, key, lines: at };
      });
    this.duplicateSections = [...headerLines.entries()]
      .filter(([, at]) => at.length > 1)
      .map(([s, at]) => ({ section: s, lines: at }));
  }

  sections(): string[] {
    return [...this.data.keys()];
  }

  hasSection(section: string): boolean {
    return this.data.has(section);
  }

  has(section: string, key: string): boolean {
    return this.data.get(section)?.has(key) ?? false;
  }

  get(section: string, key: string): string | undefined;
  get(section: string, key: string, fallback: string): string;
  get(section: string, key: string, fallback?: string): string | undefined {
    return this.data.get(section)?.get(key) ?? fallback;
  }

  /** A copy of one section's keys and values (empty if the section is absent). */
  section(section: string): Record<string, string> {
    return Object.fromEntries(this.data.get(section) ?? []);
  }

  /** 1-based line of a key, or of a section header when `key` is left out. */
  lineOf(section: string, key?: string): number | undefined {
    return this.lines.get(key === undefined ? `[${section}]` : `${section}\0${key}`);
  }
}
