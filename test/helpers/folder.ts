import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { FolderSource, FolderSourceOptions } from '../../src/sources/folder';
import type { FileReport } from '../../src/sources/report';
import type { Store } from '../../src/store/store';
import { tempDir, tempSqliteStore } from './fixtures';

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

/** Each test's apps folder and store, and the FolderSource it started on them, if any. */
export interface FolderSourceFixture {
  /** A fresh temporary apps folder. */
  readonly dir: string;
  /** A store on a fresh SQLite file. */
  readonly store: Store;
  /** The source `start` started and nothing has stopped yet. */
  readonly running: RunningSource | undefined;
  /** Starts a FolderSource on `dir` and `store`; it is stopped after the test. */
  start(options?: Partial<FolderSourceOptions>): Promise<RunningSource>;
  /** Stops the running source, if any, and waits for it. */
  stop(): Promise<void>;
  /** The running source's report of one file, by its path below `dir`. */
  fileReport(relative: string): FileReport | undefined;
}

/**
 * Gives every test of the calling `describe` its own apps folder and SQLite store,
 * and after each test stops the source it started, closes the store and removes the folder.
 * Read `dir` and `store` inside tests and hooks: they are new for each test.
 */
export function useFolderSource(): FolderSourceFixture {
  let dir: string | undefined;
  let store: Store | undefined;
  let running: RunningSource | undefined;
  const must = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} exists only while a test runs`);
    return value;
  };

  beforeEach(async () => {
    dir = tempDir('berth-apps-');
    ({ store } = await tempSqliteStore());
  });

  const fixture: FolderSourceFixture = {
    get dir() {
      return must(dir, 'the apps folder');
    },
    get store() {
      return must(store, 'the store');
    },
    get running() {
      return running;
    },
    start: async (options = {}) => (running = await startFolderSource(fixture.dir, fixture.store, options)),
    async stop() {
      await running?.stop();
      running = undefined;
    },
    fileReport: (relative) => running?.source.report().files.find((f) => f.path === relative),
  };

  afterEach(async () => {
    await fixture.stop();
    await store?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
    store = undefined;
  });

  return fixture;
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
export function appYaml(
  name: string,
  { image = 'busybox:1.36', env = {}, labels = {} }: { image?: string; env?: Record<string, string>; labels?: Record<string, string> } = {},
): string {
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
