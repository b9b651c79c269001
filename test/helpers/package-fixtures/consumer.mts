// Type-checks the ESM face of the installed package (tsc --noEmit, node16).
import edgepoll, { createServer, EdgepollError, type ServerOptions } from 'edgepoll';

const options: ServerOptions = { engine: 'auto' };
const server = createServer(options);
const engine: 'native' | 'net' | 'cluster' = server.engine;
const same: typeof createServer = edgepoll.createServer;
const isError: boolean = new Error('x') instanceof EdgepollError;
// @ts-expect-error: not an engine name, so the types are real (not `any`).
createServer({ engine: 'epoll' });
export { engine, same, isError };
