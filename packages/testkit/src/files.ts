import { readFileSync } from 'node:fs';

/** A file's text, or '' if it is missing or unreadable (log tails, pid files of processes that may be gone). */
export function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
