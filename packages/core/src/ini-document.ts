import { decode } from 'ini';

/**
 * A parsed INI file, read with the `ini` package, plus the line of every key so problems can be
 * reported as `file:line [section] key`. Mirrors Python's ConfigParser where the original's plugins
 * used it (`ini.get('params', 'x')`, `ini.has_option(...)`), so ported handlers read the same.
 */
export class IniDocument {
  readonly path: string;
  readonly text: string;
  private readonly data: Map<string, Map<string, string>>;
  private readonly lines: Map<string, number>;
  /** Keys written more than once in one section: `section\0key` -> lines. */
  readonly duplicates: ReadonlyArray<{ section: string; key: string; lines: number[] }>;
  /** Section headers written more than once (`ini` would merge them silently), with their lines. */
  readonly duplicateSections: ReadonlyArray<{ section: string; lines: number[] }>;

  constructor(path: string, text: string) {
    this.path = path;
    this.text = text;
    this.data = new Map();
    const decoded = decode(keepInlineHashes(text)) as Record<string, unknown>;
    for (const [section, body] of Object.entries(decoded)) {
      if (body === null || typeof body !== 'object' || Array.isArray(body)) continue;
      const entries = new Map<string, string>();
      for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
        if (value !== null && typeof value === 'object') continue;
        // `ini` turns true/false/null into booleans/null: hand handlers the text the user wrote.
        entries.set(key, value === null ? '' : String(value));
      }
      this.data.set(section, entries);
    }
    const scanned = scanLines(text);
    this.lines = scanned.lines;
    this.duplicates = scanned.duplicates;
    this.duplicateSections = scanned.duplicateSections;
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

/**
 * Python's ConfigParser (what docker-glue users wrote their files for) has no inline comments: in
 * `class=@glue/handler-exec#ScriptHandler` the `#` belongs to the value. `ini` would cut the value
 * there, so `\`, `;` and `#` after the first `=` are escaped, which `ini` reads back verbatim.
 */
function keepInlineHashes(text: string): string {
  return text
    .split(/\r?\n/)
    .map((line) => {
      const trimmed = line.trimStart();
      if (trimmed.startsWith(';') || trimmed.startsWith('#') || trimmed.startsWith('[')) return line;
      const eq = line.indexOf('=');
      if (eq === -1) return line;
      return line.slice(0, eq + 1) + line.slice(eq + 1).replace(/[\\;#]/g, (c) => `\\${c}`);
    })
    .join('\n');
}

function scanLines(text: string): {
  lines: Map<string, number>;
  duplicates: Array<{ section: string; key: string; lines: number[] }>;
  duplicateSections: Array<{ section: string; lines: number[] }>;
} {
  const lines = new Map<string, number>();
  const seen = new Map<string, number[]>();
  const headers = new Map<string, number[]>();
  let section = '';
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    const n = index + 1;
    if (line === '' || line.startsWith(';') || line.startsWith('#')) return;
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1] !== undefined) {
      section = header[1].trim();
      if (!lines.has(`[${section}]`)) lines.set(`[${section}]`, n);
      headers.set(section, [...(headers.get(section) ?? []), n]);
      return;
    }
    const eq = line.indexOf('=');
    const key = (eq === -1 ? line : line.slice(0, eq)).trim();
    const id = `${section}\0${key}`;
    if (!lines.has(id)) lines.set(id, n);
    seen.set(id, [...(seen.get(id) ?? []), n]);
  });
  const duplicates = [...seen.entries()]
    .filter(([, at]) => at.length > 1)
    .map(([id, at]) => {
      const [section = '', key = ''] = id.split('\0');
      return { section, key, lines: at };
    });
  const duplicateSections = [...headers.entries()].filter(([, at]) => at.length > 1).map(([section, at]) => ({ section, lines: at }));
  return { lines, duplicates, duplicateSections };
}
