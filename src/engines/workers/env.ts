/**
 * What a native workers primary tells each worker it forks, through the
 * environment (src/engines/workers/engine.ts). Runs on: any process.
 */
export const WORKERS_ENV = {
  /** The inherited listening socket's fd in the worker. */
  fd: 'EDGEPOLL_WORKERS_FD',
  /** The host the primary listened on (the address the worker reports). */
  host: 'EDGEPOLL_WORKERS_HOST',
  /** Which generation (reload) the worker belongs to, from 1. */
  generation: 'EDGEPOLL_WORKERS_GENERATION',
} as const;

/** Where the socket lands in a worker: child stdio index 3 is the IPC channel, 4 the socket. */
export const WORKERS_FD = 4;
