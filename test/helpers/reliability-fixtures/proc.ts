/**
 * Reads a server's resource use from /proc for reliability tests: resident
 * memory, open fds and CPU time, summed over a process and its descendants
 * (the cluster engine's workers are children of the fixture process).
 * Linux only; every reader tolerates a process that exits meanwhile.
 */
import fs from 'node:fs';

function read(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The pid and every descendant (found through /proc/<pid>/task/<tid>/children). */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const pending = [pid];
  while (pending.length > 0) {
    const next = pending.pop()!;
    out.push(next);
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${next}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      const children = read(`/proc/${next}/task/${task}/children`);
      for (const child of children?.trim().split(/\s+/) ?? []) if (child) pending.push(Number(child));
    }
  }
  return out;
}

/** Resident set size in bytes, summed over the tree. */
export function rssBytes(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    const match = /VmRSS:\s+(\d+) kB/.exec(read(`/proc/${p}/status`) ?? '');
    if (match) total += Number(match[1]) * 1024;
  }
  return total;
}

/** Open file descriptors, summed over the tree. */
export function fdCount(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      total += fs.readdirSync(`/proc/${p}/fd`).length;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** Open TCP sockets (fds that are sockets), summed over the tree. */
export function socketCount(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${p}/fd/${fd}`).startsWith('socket:')) total++;
      } catch {
        // closed meanwhile
      }
    }
  }
  return total;
}

/** CPU time (user + system) in clock ticks (1/100 s on Linux), summed over the tree. */
export function cpuTicks(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    const stat = read(`/proc/${p}/stat`);
    if (!stat) continue;
    // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += Number(fields[11]) + Number(fields[12]);
  }
  return total;
}

/** Polls `read` until `done(value)` or the timeout; returns the last value. */
export async function settle<T>(read: () => T, done: (value: T) => boolean, timeout = 5000, every = 100): Promise<T> {
  const deadline = Date.now() + timeout;
  let value = read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, every));
    value = read();
  }
  return value;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The kernel's TCP states ('01' ESTABLISHED, '08' CLOSE_WAIT, … as in
 * /proc/net/tcp) of the sockets a process holds. The kernel keeps a stopped
 * process's connections up to date, so this tells what its peer did (a FIN
 * turns ESTABLISHED into CLOSE_WAIT) without a probe connection of our own.
 */
export function tcpStates(pid: number): string[] {
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const states: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (read(table) ?? '').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local remote st tx:rx tr:when retrnsmt uid timeout inode
      if (fields.length > 9 && inodes.has(fields[9]!)) states.push(fields[3]!);
    }
  }
  return states;
}
