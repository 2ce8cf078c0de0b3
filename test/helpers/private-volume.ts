/**
 * A small file system of a test's own: an ext4 image loop-mounted in a temp
 * folder, so a test can fill it to the last byte without touching the disk
 * everyone else writes to. Needs root (mount, losetup) and mkfs.ext4.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface PrivateVolume {
  /** Where it is mounted. */
  dir: string;
  /** Writes a filler file until the file system has no space left. */
  fill(): void;
  /** Deletes the filler: the space comes back. */
  free(): void;
  /** Unmounts and detaches it, and removes its image; safe to call twice. */
  remove(): void;
}

/** Why this machine cannot mount a private volume, or undefined when it can. */
export function volumeMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting a loop device needs root';
  for (const tool of ['mkfs.ext4', 'losetup', 'mount', 'umount']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (apt-get install e2fsprogs mount)`;
    }
  }
  return undefined;
}

/** Makes and mounts an ext4 file system of `sizeMb` megabytes. */
export function mountVolume(sizeMb: number): PrivateVolume {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-chaos-volume-'));
  const image = path.join(base, 'volume.img');
  const dir = path.join(base, 'mnt');
  const filler = path.join(dir, 'filler');
  fs.mkdirSync(dir);
  execFileSync('truncate', ['-s', `${sizeMb}M`, image]);
  // No reserved blocks: root (berth, in the test) would otherwise write on into them after the filler stops.
  execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
  execFileSync('mount', ['-o', 'loop', image, dir]);
  let mounted = true;
  return {
    dir,
    fill() {
      // dd stops with "No space left on device", which is the point.
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
      } catch {
        /* the file system is full */
      }
      execFileSync('sync');
    },
    free() {
      fs.rmSync(filler, { force: true });
      execFileSync('sync');
    },
    remove() {
      if (mounted) {
        // -d detaches the loop device mount set up, so none is left behind.
        execFileSync('umount', ['-d', dir]);
        mounted = false;
      }
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
