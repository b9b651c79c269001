/**
 * The demo service that `edgepoll serve` runs (docs/PROTOCOL.md section 5):
 * frame framing: 1 ECHO, 2 BROADCAST, 3 STATS, 4 SUBSCRIBE, 5 UNSUBSCRIBE,
 * 6 PUBLISH, 7 WHOAMI, 8 SENDTO; other framings: echo.
 */
import { EdgepollError } from '../errors';
import type { Server } from '../server/server';
import { topicFromBytes } from '../server/topics';

export const ECHO = 1;
export const BROADCAST = 2;
export const STATS = 3;
export const SUBSCRIBE = 4;
export const UNSUBSCRIBE = 5;
export const PUBLISH = 6;
export const WHOAMI = 7;
export const SENDTO = 8;

/** Splits `head 0x00 rest`; throws (an ERROR reply) when there is no 0x00. */
function split(payload: Buffer, what: string): [Buffer, Buffer] {
  const zero = payload.indexOf(0);
  if (zero < 0) throw new EdgepollError('EINVALID_OPTION', `${what} payload must be ${what === 'PUBLISH' ? 'a topic' : 'an address'}, one 0x00 byte, the message`);
  return [payload.subarray(0, zero), payload.subarray(zero + 1)];
}

export function installDemo(server: Server): void {
  if (server.options.framing === 'frame') {
    server.handle(ECHO, (payload) => payload);
    server.handle(BROADCAST, (payload) => {
      server.broadcast(BROADCAST, payload);
    });
    server.handle(STATS, async () => JSON.stringify(await server.stats()));
    server.handle(SUBSCRIBE, async (payload, { connection }) => {
      await connection.subscribe(topicFromBytes(payload));
    });
    server.handle(UNSUBSCRIBE, (payload, { connection }) => {
      connection.unsubscribe(topicFromBytes(payload));
    });
    server.handle(PUBLISH, (payload) => {
      const [topic] = split(payload, 'PUBLISH');
      // The pushed payload is the request's own `topic 0x00 message`; the
      // sender's push (if it subscribed) is queued before this reply.
      server.publish(topicFromBytes(topic), PUBLISH, payload);
    });
    server.handle(WHOAMI, (_payload, { connection }) => connection.address);
    server.handle(SENDTO, (payload) => {
      const [address, message] = split(payload, 'SENDTO');
      server.sendTo(address.toString('utf8'), SENDTO, message);
    });
    return;
  }
  const event = server.options.framing === 'raw' ? 'data' : 'message';
  server.on('connection', (connection) => {
    connection.on(event, (payload: Buffer) => {
      if (!connection.closed) connection.write(payload);
    });
  });
}
