/**
 * The image a network sandbox runs (see network-sandboxes.ts): one static
 * program that waits for a signal forever, as Kubernetes' `pause` does. No
 * registry can be assumed, and the Apps' own images cannot be trusted to hold
 * a shell, so berth makes the image itself: a 129-byte x86-64 Linux program
 * in a one-file tar, imported by the engine (`POST /images/create?fromSrc=-`).
 * An engine on another architecture gets no sandboxes, and its runs each make
 * their own namespace as before.
 */

import type Docker from 'dockerode';
import { Readable } from 'node:stream';
import { awaitPull } from './image-pull';

/** The sandbox image; its tag changes whenever the program does. */
export const SANDBOX_IMAGE = 'berth/network-sandbox:1';

/** Where the program sits in the image, and so the sandbox's command. */
export const SANDBOX_COMMAND = ['/pause'];

/** `docker info`'s Architecture values the program runs on. */
const SANDBOX_ARCHITECTURES = ['x86_64', 'amd64'];

export function sandboxArchitecture(architecture: string | undefined): boolean {
  return SANDBOX_ARCHITECTURES.includes(architecture ?? '');
}

/** Where the program is loaded, as static executables traditionally are. */
const LOAD_ADDRESS = 0x40_0000;
const ELF_HEADER_SIZE = 64;
const PROGRAM_HEADER_SIZE = 56;

/** `loop: mov eax, 34 (pause); syscall; jmp loop`: sleeps until a signal, and again; SIGKILL ends it. */
const PAUSE_FOREVER = Buffer.from([0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7]);

/** A static x86-64 ELF executable: a header, one loadable segment (the whole file), then the code. */
export function pauseProgram(): Buffer {
  const codeAt = ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE;
  const file = Buffer.alloc(codeAt + PAUSE_FOREVER.length);
  // e_ident: magic, 64-bit, little-endian, ELF version 1, System V ABI.
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  file.writeUInt16LE(2, 0x10); // e_type: an executable
  file.writeUInt16LE(0x3e, 0x12); // e_machine: x86-64
  file.writeUInt32LE(1, 0x14); // e_version
  file.writeBigUInt64LE(BigInt(LOAD_ADDRESS + codeAt), 0x18); // e_entry
  file.writeBigUInt64LE(BigInt(ELF_HEADER_SIZE), 0x20); // e_phoff: the program header follows
  file.writeUInt16LE(ELF_HEADER_SIZE, 0x34); // e_ehsize
  file.writeUInt16LE(PROGRAM_HEADER_SIZE, 0x36); // e_phentsize
  file.writeUInt16LE(1, 0x38); // e_phnum
  file.writeUInt16LE(64, 0x3a); // e_shentsize (no sections)
  const ph = ELF_HEADER_SIZE;
  file.writeUInt32LE(1, ph); // p_type: PT_LOAD
  file.writeUInt32LE(5, ph + 0x04); // p_flags: read and execute
  file.writeBigUInt64LE(0n, ph + 0x08); // p_offset
  file.writeBigUInt64LE(BigInt(LOAD_ADDRESS), ph + 0x10); // p_vaddr
  file.writeBigUInt64LE(BigInt(LOAD_ADDRESS), ph + 0x18); // p_paddr
  file.writeBigUInt64LE(BigInt(file.length), ph + 0x20); // p_filesz
  file.writeBigUInt64LE(BigInt(file.length), ph + 0x28); // p_memsz
  file.writeBigUInt64LE(0x1000n, ph + 0x30); // p_align
  PAUSE_FOREVER.copy(file, codeAt);
  return file;
}

const BLOCK = 512;

/** A POSIX (ustar) archive holding one executable file. */
export function oneFileTar(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(BLOCK);
  const octal = (value: number, width: number) => `${value.toString(8).padStart(width - 1, '0')}\0`;
  header.write(name, 0, 100, 'ascii');
  header.write(octal(0o755, 8), 100, 'ascii'); // mode
  header.write(octal(0, 8), 108, 'ascii'); // uid
  header.write(octal(0, 8), 116, 'ascii'); // gid
  header.write(octal(content.length, 12), 124, 'ascii'); // size
  header.write(octal(0, 12), 136, 'ascii'); // mtime
  header.write('        ', 148, 'ascii'); // the checksum counts its own field as spaces
  header.write('0', 156, 'ascii'); // a regular file
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const padded = Buffer.alloc(Math.ceil(content.length / BLOCK) * BLOCK);
  content.copy(padded);
  // Two empty blocks end the archive.
  return Buffer.concat([header, padded, Buffer.alloc(2 * BLOCK)]);
}

/**
 * Imports the sandbox image into the engine. The answer is a progress stream
 * like a pull's (a failure may come as an `error` line after a 200), read to
 * its end, which is when the image exists.
 */
export async function importSandboxImage(docker: Docker, abortSignal: AbortSignal): Promise<void> {
  const [repo, tag] = SANDBOX_IMAGE.split(':');
  const archive = Readable.from([oneFileTar(SANDBOX_COMMAND[0].slice(1), pauseProgram())]);
  const answer = (await docker.importImage(archive, { repo, tag, abortSignal } as object)) as Readable;
  try {
    await awaitPull(answer);
  } catch (error) {
    throw new Error(`importing ${SANDBOX_IMAGE}: ${(error as Error).message}`);
  }
}
