/**
 * Reading files an operator names (INI files, certificates, templates): only regular files, never
 * more than a bound, and never a read that can block. A FIFO, a device (`/dev/zero`), a directory or a
 * socket is refused with what it is, instead of hanging or reading forever.
 */
import { constants, fstatSync, openSync, closeSync, readSync, statSync, type Stats } from 'node:fs';

/** What an INI file or a certificate may weigh at most. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/** Why `path` is not a regular file, or undefined when it is one. */
export function notRegular(stats: Stats): string | undefined {
  if (stats.isFile()) return undefined;
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** A file Glue will not read: what it is or why, without the path (callers name it). */
export class FileReadError extends Error {
  readonly path: string;
  readonly errno: string | undefined;

  constructor(path: string, reason: string, errno?: string) {
    super(reason);
    this.name = 'FileReadError';
    this.path = path;
    this.errno = errno;
  }
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}

/**
 * The bytes of a regular file of at most `maxBytes` (symlinks followed). Opened non-blocking and
 * checked with fstat on the open descriptor, so a FIFO or device is refused before any read and the
 * check cannot be raced. Throws FileReadError.
 */
export function readRegularFile(path: string, maxBytes = MAX_CONFIG_FILE_BYTES): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'ENXIO'
            ? 'a socket or device without a reader'
            : (err as Error).message;
    throw new FileReadError(path, reason, code);
  }
  try {
    const stats = fstatSync(fd);
    const not = notRegular(stats);
    if (not) throw new FileReadError(path, `it is ${not}, not a regular file`);
    if (stats.size > maxBytes)
      throw new FileReadError(path, `it is ${sizeText(stats.size)}; Glue reads at most ${sizeText(maxBytes)}`);
    const buf = Buffer.alloc(Math.min(stats.size, maxBytes) + 1);
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, total, buf.length - total, null);
      if (n === 0) break;
      total += n;
      // It grew while being read: still bounded.
      if (total > maxBytes)
        throw new FileReadError(path, `it grew over ${sizeText(maxBytes)} while being read; Glue reads at most that`);
      if (total === buf.length) break;
    }
    return buf.subarray(0, total);
  } finally {
    closeSync(fd);
  }
}

/** `readRegularFile` as UTF-8 text; invalid UTF-8 is refused rather than replaced. */
export function readTextFile(path: string, maxBytes = MAX_CONFIG_FILE_BYTES): string {
  const bytes = readRegularFile(path, maxBytes);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FileReadError(path, 'it is not UTF-8 text');
  }
}

/** Why `path` cannot be used as a file to read (missing, not regular), or undefined. No read, no block. */
export function regularFileProblem(path: string): string | undefined {
  try {
    const not = notRegular(statSync(path));
    return not ? `is ${not}, not a regular file` : undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message;
  }
}
