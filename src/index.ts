export * from './model/types';
export * from './errors';
export { Store } from './store/store';
export type { StoredApp, StoredRun, StoreEvent } from './store/store';
export type { Executor } from './executors/executor';
