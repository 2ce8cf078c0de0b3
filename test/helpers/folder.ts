import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { FolderSource, FolderSourceOptions } from '../../src/sources/folder';
import type { Store } from '../../src/store/store';

/** A started folder source and how to stop it (stopping waits for the watcher to close). */
export interface RunningSource {
  source: FolderSource;
  stop(): Promise<void>;
}

/** Starts a FolderSource on `dir` and waits until its start-up scan is done. */
export async function startFolderSource(dir: string, store: Store, options: Partial<FolderSourceOptions> = {}): Promise<RunningSource> {
  const source = new FolderSource({ dir, store, registry: new Registry(), ...options });
  const controller = new AbortController();
  const running = source.start(controller.signal);
  // Surface a start failure instead of waiting forever on `ready`.
  await Promise.race([source.ready, running.then(() => Promise.reject(new Error('folder source stopped before ready')))]);
  return {
    source,
    async stop() {
      controller.abort();
      await running;
    },
  };
}

/** Writes a file below `dir`, creating folders, in one write. */
export function writeFile(dir: string, relative: string, text: string): void {
  const file = path.join(dir, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/** Replaces a file the way editors and `git checkout` do: write a temporary file beside it, then rename it over. */
export function replaceFile(dir: string, relative: string, text: string): void {
  const file = path.join(dir, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(temp, text);
  fs.renameSync(temp, file);
}

/** An App manifest document. */
export function appYaml(name: string, { image = 'busybox:1.36', env = {}, labels = {} }: { image?: string; env?: Record<string, string>; labels?: Record<string, string> } = {}): string {
  const lines = ['apiVersion: berth.dev/v1', 'kind: App', 'metadata:', `  name: ${name}`];
  if (Object.keys(labels).length) lines.push('  labels:', ...Object.entries(labels).map(([k, v]) => `    ${k}: "${v}"`));
  lines.push('spec:', `  image: ${image}`, '  command: ["sh", "-c", "echo hello"]');
  if (Object.keys(env).length) lines.push('  env:', ...Object.entries(env).map(([k, v]) => `    ${k}: "${v}"`));
  return `${lines.join('\n')}\n`;
}

/** A Run manifest document. */
export function runYaml(name: string, app: string, env: Record<string, string> = {}): string {
  const lines = ['apiVersion: berth.dev/v1', 'kind: Run', 'metadata:', `  name: ${name}`, 'spec:', `  app: ${app}`];
  if (Object.keys(env).length) lines.push('  env:', ...Object.entries(env).map(([k, v]) => `    ${k}: "${v}"`));
  return `${lines.join('\n')}\n`;
}

/** Joins documents into one multi-document YAML text. */
export const documents = (...docs: string[]): string => docs.join('---\n');
