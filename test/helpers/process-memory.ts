/**
 * How much memory a local process and everything it started holds, read from
 * /proc: what the in-memory executor weighs against a workload's limit, the
 * way a container's memory cgroup counts all of its processes.
 */

import { readFile, readdir } from 'node:fs/promises';

interface ProcessEntry {
  pid: number;
  ppid: number;
  pgrp: number;
}

/** pid, parent and process group from `/proc/<pid>/stat`, or undefined when the process is gone. */
async function entryOf(pid: number): Promise<ProcessEntry | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may hold spaces and parentheses itself: the fields start after the last ')'.
    const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(ppid), pgrp: Number(pgrp) };
  } catch {
    return undefined;
  }
}

/** Resident memory of one process in bytes; 0 when it is gone or is a zombie. */
async function rssOf(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    return kib ? Number(kib) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Resident memory, in bytes, of the process group led by `leader` and of
 * every descendant of `leader` (a descendant may have left the group).
 * Processes that both left the group and lost their parent are not counted.
 */
export async function groupMemoryBytes(leader: number): Promise<number> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const entries = (await Promise.all(pids.map(entryOf))).filter((entry): entry is ProcessEntry => entry !== undefined);
  const children = new Map<number, number[]>();
  for (const entry of entries) children.set(entry.ppid, [...(children.get(entry.ppid) ?? []), entry.pid]);
  const members = new Set(entries.filter((entry) => entry.pgrp === leader).map((entry) => entry.pid));
  for (const pending = [leader]; pending.length > 0; ) {
    const pid = pending.pop() as number;
    members.add(pid);
    pending.push(...(children.get(pid) ?? []).filter((child) => !members.has(child)));
  }
  const sizes = await Promise.all([...members].map(rssOf));
  return sizes.reduce((sum, size) => sum + size, 0);
}
