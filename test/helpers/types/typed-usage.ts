// Compiled by test/protocol/messages.test.ts with tsc: every @ts-expect-error must be
// an error and every other line must compile, so the message-map typing holds.
import { connect, createServer, type Connection } from '../../../src/index';

interface ChatApi {
  1: { request: string; reply: string };
  2: { request: Uint8Array; reply: void };
}

const server = createServer<ChatApi>({ engine: 'net' });
server.handle(1, (payload) => payload.toString('utf8'));
server.handle(1, async () => 'async works too');
server.handle(2, () => undefined);
// @ts-expect-error 3 is not a type of ChatApi
server.handle(3, () => 'x');
// @ts-expect-error type 1 replies a string, not a number
server.handle(1, () => 42);
server.broadcast(1, 'to everyone');
// broadcast() reports backpressure; 'broadcastDrain' says when to go on.
const taken: boolean = server.broadcast(1, 'again');
if (!taken) server.once('broadcastDrain', () => server.broadcast(1, 'after the wait'));
// @ts-expect-error type 2 carries bytes, not a number
server.broadcast(2, 7);
server.on('connection', (connection: Connection<ChatApi>) => {
  connection.send(1, 'hi');
  // @ts-expect-error 9 is not a type of ChatApi
  connection.send(9, 'hi');
  void connection.request(2, new Uint8Array(2));
});

const client = connect<ChatApi>({ port: 1, reconnect: false });
void client.request(1, 'hello');
// @ts-expect-error type 1 carries a string
void client.request(1, 12);
client.handle(1, (payload) => payload.toString());
// @ts-expect-error 4 is not a type of ChatApi
client.send(4, 'x');

// Without a map, every type and payload is allowed.
const loose = createServer({ engine: 'net' });
loose.handle(4242, () => undefined);
loose.handle(7, (payload) => payload);
