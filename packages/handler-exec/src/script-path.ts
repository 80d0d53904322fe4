import { accessSync, constants, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/** Where scripts are looked for when `script=` is not absolute, in order. */
export function scriptCandidates(script: string, iniDir: string, libexec = '/usr/libexec/docker-glue'): string[] {
  if (isAbsolute(script)) return [script];
  return [
    resolve(iniDir, script),
    resolve(iniDir, 'handler-scripts', script),
    resolve(dirname(iniDir), 'handler-scripts', script),
    join(libexec, script),
  ];
}

export type ScriptLookup = { path: string } | { error: string };

/** Finds the first candidate that exists; it must be an executable file. */
export function findScript(script: string, iniDir: string, libexec?: string): ScriptLookup {
  const candidates = scriptCandidates(script, iniDir, libexec);
  for (const path of candidates) {
    let isFile: boolean;
    try {
      isFile = statSync(path).isFile();
    } catch {
      continue;
    }
    if (!isFile) return { error: `${path} is not a file` };
    try {
      accessSync(path, constants.X_OK);
    } catch {
      return { error: `${path} is not executable (chmod +x ${path})` };
    }
    return { path };
  }
  return { error: `${JSON.stringify(script)} not found (looked in: ${candidates.join(', ')})` };
}
