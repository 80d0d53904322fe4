/**
 * Talking to HAProxy: `haproxy -c` on a file, one command on the runtime API (stats socket) or the
 * master CLI. No shell anywhere: commands go over the socket, binaries run with argument arrays.
 */
import { connect } from 'node:net';
import { execa } from 'execa';

export interface CheckResult {
  ok: boolean;
  /** HAProxy's own output (alerts and warnings), trimmed. */
  output: string;
  durationMs: number;
}

/** `haproxy -c -f file`: HAProxy's verdict on a config file. */
export async function checkConfig(haproxyBin: string, file: string, timeoutMs = 30_000): Promise<CheckResult> {
  const started = performance.now();
  const r = await execa(haproxyBin, ['-c', '-f', file], {
    reject: false,
    timeout: timeoutMs,
    stdin: 'ignore',
    all: true,
  });
  const output = (typeof r.all === 'string' ? r.all : '')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('[NOTICE]') && l.trim() !== 'Configuration file is valid')
    .join('\n');
  const durationMs = Math.round(performance.now() - started);
  if (r.timedOut) return { ok: false, output: `haproxy -c did not finish within ${timeoutMs} ms`, durationMs };
  if (r.exitCode === undefined && r.failed)
    return { ok: false, output: r.shortMessage ?? 'haproxy -c failed to run', durationMs };
  return { ok: r.exitCode === 0, output, durationMs };
}

/**
 * Sends one command line to a HAProxy CLI socket (runtime API or master CLI, non-interactive mode)
 * and returns everything it answers before closing.
 */
export function socketCommand(path: string, command: string, timeoutMs = 5000): Promise<string> {
  if (/[\r\n]/.test(command)) return Promise.reject(new Error('a HAProxy CLI command may not contain a line break'));
  return exchange(path, `${command}\n`, command, timeoutMs);
}

/**
 * One command with a payload (`set ssl cert <file> <<` then the PEM lines, ended by an empty line).
 * The payload may not hold an empty line (it would end it early).
 */
export function socketPayloadCommand(
  path: string,
  command: string,
  payload: string,
  timeoutMs = 5000,
): Promise<string> {
  if (/[\r\n]/.test(command)) return Promise.reject(new Error('a HAProxy CLI command may not contain a line break'));
  const body = payload.replace(/\r/g, '').replace(/\n+$/, '');
  if (body === '' || /\n\n/.test(body))
    return Promise.reject(new Error('a HAProxy CLI payload may not be empty or hold an empty line'));
  return exchange(path, `${command} <<\n${body}\n\n`, command, timeoutMs);
}

/** Writes `text`, half-closes, and returns all HAProxy answers before it closes the connection. */
function exchange(path: string, text: string, command: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let out = '';
    const timer = setTimeout(
      () => sock.destroy(new Error(`no answer from ${path} within ${timeoutMs} ms to ${JSON.stringify(command)}`)),
      timeoutMs,
    );
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.end(text));
    sock.on('data', (d: string) => (out += d));
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** The runtime API's answer to a command that says nothing on success. Throws with HAProxy's text otherwise. */
export async function runtimeCommand(path: string, command: string, okPattern?: RegExp): Promise<string> {
  const answer = (await socketCommand(path, command)).trim();
  if (okPattern ? !okPattern.test(answer) : answer !== '') {
    throw new Error(`HAProxy runtime API refused ${JSON.stringify(command)}: ${answer || '(no answer)'}`);
  }
  return answer;
}

export interface ProcInfo {
  masterPid: number;
  reloads: number;
  failed: number;
  /** Worker PIDs, newest first (`show proc` lists them by reload count). */
  workers: Array<{ pid: number; reloads: number }>;
}

/** Parses the master CLI's `show proc`. */
export function parseShowProc(text: string): ProcInfo | undefined {
  const info: ProcInfo = { masterPid: 0, reloads: 0, failed: 0, workers: [] };
  let section = 'master';
  for (const line of text.split('\n')) {
    if (line.startsWith('# workers')) section = 'workers';
    else if (line.startsWith('# programs')) section = 'programs';
    if (line.startsWith('#') || line.trim() === '') continue;
    const cols = line.trim().split(/\s+/);
    const pid = Number(cols[0]);
    if (!Number.isInteger(pid)) continue;
    if (cols[1] === 'master') {
      info.masterPid = pid;
      info.reloads = Number(cols[2]);
      const failed = /\[failed: (\d+)\]/.exec(line);
      info.failed = failed ? Number(failed[1]) : 0;
    } else if (section === 'workers' && cols[1] === 'worker') {
      info.workers.push({ pid, reloads: Number(cols[2]) });
    }
  }
  if (info.masterPid === 0) return undefined;
  info.workers.sort((a, b) => a.reloads - b.reloads);
  return info;
}

/** The PID of the worker answering on a runtime socket (`show info`). */
export async function workerPid(runtimeSocket: string): Promise<number | undefined> {
  const text = await socketCommand(runtimeSocket, 'show info', 2000);
  const m = /^Pid: (\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}
