// Compiled by test/types.test.ts with tsc against the BUILT declarations
// (dist/index.d.ts), as a user of the package sees them: each line marked
// as an expected error must be one, and every other line must compile.
import * as edgepoll from '../../../dist/index';
import {
  connect,
  createServer,
  Connection,
  type ClientHandlerContext,
  type ClientOptions,
  type HandlerResult,
  type ReadyOptions,
  type RequestOptions,
  type ResolvedOptions,
  type ServerOptions,
  type EdgepollError,
} from '../../../dist/index';

// Types used in public signatures are exported by name.
const context = (c: ClientHandlerContext): number => c.seq;
const result: HandlerResult = 'reply';
const ready: ReadyOptions = { timeout: 1000 };
const request: RequestOptions = { timeout: 0 };
const shutdown: ServerOptions = { shutdownTimeout: 100, requestTimeout: 1000 };
void [context, result, ready, request, shutdown];

const server = createServer({ engine: 'net' });
const resolved: ResolvedOptions = server.options;
void resolved.requestTimeout;
void server.listen(7000);
void server.listen(7000, '127.0.0.1');
void server.listen({ port: 0 });
server.handle(1, undefined);
server.on('connection', (connection) => {
  // @ts-expect-error internal: not on the public type
  void connection.inFlight;
  // @ts-expect-error internal: not on the public type
  connection.reply(1, 1, 1, new Uint8Array());
  // @ts-expect-error internal: not on the public type
  connection.response(1, 1, Buffer.alloc(0));
  // @ts-expect-error internal: not on the public type
  connection.closedBy('OK', '');
  // @ts-expect-error internal: not on the public type
  connection.peerEnded(false);
  const accepted: boolean = connection.send(1, 'x');
  void accepted;
  connection.on('message', (payload: Buffer) => void payload);
});
// @ts-expect-error connections are made by the server, not by users
new Connection();

const client = connect(7000);
const client2 = connect(7000, 'localhost');
const backpressure: boolean = client.send(1, 'x');
const amount: number = client.bufferedAmount;
void [client2, backpressure, amount];
client.on('error', (error: EdgepollError) => void error.code);
client.on('drain', () => undefined);
void client.ready({ timeout: 100, signal: AbortSignal.timeout(100) });
// @ts-expect-error test hooks are not client options
const hooked: ClientOptions = { port: 1, clock: { now: () => 0 } };
// @ts-expect-error test hooks are not client options
const random: ClientOptions = { port: 1, random: () => 0 };
void [hooked, random];
// @ts-expect-error the status after GOAWAY is 'goaway' (the event's name), not 'draining'
const status: typeof client.status = 'draining';
void status;

// @ts-expect-error wire helpers are not API
void edgepoll.protocol;
// @ts-expect-error test fakes do not ship
void edgepoll.FakeClock;
// @ts-expect-error the internal hook injector is not exported
void edgepoll.connectWithHooks;

// A message map types what is sent; what arrives is bytes, and the types say so.
interface Api {
  1: { request: string; reply: string };
}
const typed = connect<Api>(7000);
const reply: Promise<Buffer> = typed.request(1, 'hi');
// @ts-expect-error the reply arrives as a Buffer, not as the map's string
const notString: Promise<string> = typed.request(1, 'hi');
void [reply, notString];
