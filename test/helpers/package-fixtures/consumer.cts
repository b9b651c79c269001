// Type-checks the CommonJS face of the installed package (tsc --noEmit, node16).
import edgepoll = require('edgepoll');
import type { ServerOptions, EngineName } from 'edgepoll';

const options: ServerOptions = { engine: 'auto', framing: 'frame' };
const server = edgepoll.createServer(options);
const engine: 'native' | 'net' | 'cluster' = server.engine;
const name: EngineName = 'net';
const error: Error | undefined = edgepoll.nativeLoadError();
// @ts-expect-error: not an engine name, so the types are real (not `any`).
edgepoll.createServer({ engine: 'epoll' });
export { engine, name, error };
