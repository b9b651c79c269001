/**
 * Unit tests of both framing codecs through one suite: src/protocol/codec.ts ('ts') and
 * native/codec.cc through the addon's decode probe ('native'). docs/PROTOCOL.md
 * sections 1-2; docs/reliability.md T01-T05, T09-T12.
 */
import { describe, expect, it } from 'vitest';
import { tryLoadNative, nativeLoadError } from '../../src/engines/native/binding';
import { Decoder, encodeMessage, type Role } from '../../src/protocol/codec';
import { DEFAULT_MAX_FRAME, framingNumber, type Framing } from '../../src/protocol/constants';
import { frame } from '../helpers/wire';

interface Decoded {
  messages: Array<{ type: number; flags: number; seq: number; payload: Buffer }>;
  error: string;
  midMessage: boolean;
}
type Implementation = 'ts' | 'native';

/** Feeds `chunks` to one implementation; with stopEvery = n the callback returns false after every n-th message. */
function run(
  implementation: Implementation,
  framing: Framing,
  maxFrame: number,
  role: Role,
  chunks: Uint8Array[],
  stopEvery = 0,
): Decoded {
  if (implementation === 'native') {
    const addon = tryLoadNative();
    if (!addon) throw nativeLoadError() ?? new Error('addon not loaded');
    const decode = addon.decode as unknown as (...args: unknown[]) => Decoded;
    return decode(framingNumber[framing], maxFrame, role === 'server' ? 0 : 1, chunks, stopEvery);
  }
  const decoder = new Decoder(framing, maxFrame, role);
  const messages: Decoded['messages'] = [];
  let error = '';
  for (const chunk of chunks) {
    error = decoder.feed(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), (type, flags, seq, payload) => {
      messages.push({ type, flags, seq, payload: Buffer.from(payload) });
      return stopEvery === 0 || messages.length % stopEvery !== 0;
    });
  }
  return { messages, error, midMessage: decoder.midMessage };
}

function bytesOf(buffer: Buffer): Buffer[] {
  return [...buffer].map((byte) => Buffer.of(byte));
}

function header(flags: number, type: number, length: number, seq = 0): Buffer {
  const out = Buffer.alloc(12);
  out[0] = 0xeb;
  out[1] = flags;
  out.writeUInt16BE(type, 2);
  out.writeUInt32BE(length >>> 0, 4);
  out.writeUInt32BE(seq, 8);
  return out;
}

function lengthPrefix(length: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(length >>> 0, 0);
  return out;
}

function payloadOf(size: number, salt = 0): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let index = 0; index < size; index++) out[index] = (index * 31 + salt) & 0xff;
  return out;
}

describe.each<Implementation>(['ts', 'native'])('codec (%s)', (implementation) => {
  const decode = (framing: Framing, maxFrame: number, role: Role, chunks: Uint8Array[], stopEvery = 0) =>
    run(implementation, framing, maxFrame, role, chunks, stopEvery);

  describe('frame', () => {
    it('delivers type, flags, seq and payload, control frames included', () => {
      const stream = Buffer.concat([
        frame(0, 1, 7, 'hello'),
        frame(1, 0xfeff, 0xffffffff, 'reply'),
        frame(3, 2, 9, ''),
        frame(0, 0xff01, 1, 'ping'),
        frame(0, 0xff02, 1, 'ping'),
        frame(0, 0xff03, 0, 'bye'),
      ]);
      const result = decode('frame', 300, 'server', [stream]);
      expect(result.error).toBe('');
      expect(result.midMessage).toBe(false);
      expect(result.messages.map((m) => [m.type, m.flags, m.seq, m.payload.toString()])).toEqual([
        [1, 0, 7, 'hello'],
        [0xfeff, 1, 0xffffffff, 'reply'],
        [2, 3, 9, ''],
        [0xff01, 0, 1, 'ping'],
        [0xff02, 0, 1, 'ping'],
        [0xff03, 0, 0, 'bye'],
      ]);
    });

    it.each([300, DEFAULT_MAX_FRAME])('size boundaries with maxFrame %i', (maxFrame) => {
      for (const size of [0, 1, maxFrame - 1, maxFrame]) {
        const payload = payloadOf(size, size);
        const whole = decode('frame', maxFrame, 'server', [frame(0, 5, 1, payload)]);
        expect(whole.error).toBe('');
        expect(whole.messages).toHaveLength(1);
        expect(whole.messages[0].payload.equals(payload)).toBe(true);
        // Split inside the header and inside the payload.
        const encoded = frame(0, 5, 1, payload);
        const split = decode('frame', maxFrame, 'server', [encoded.subarray(0, 5), encoded.subarray(5, 12 + (size >> 1)), encoded.subarray(12 + (size >> 1))]);
        expect(split.messages[0].payload.equals(payload)).toBe(true);
      }
      // maxFrame + 1 fails once the length field (bytes 4-7) is complete, with no payload sent.
      const over = header(0, 5, maxFrame + 1, 1);
      expect(decode('frame', maxFrame, 'server', [over.subarray(0, 7)]).error).toBe('');
      expect(decode('frame', maxFrame, 'server', [over.subarray(0, 8)]).error).toBe('EFRAME_TOO_LARGE');
      const result = decode('frame', maxFrame, 'server', [over]);
      expect(result.error).toBe('EFRAME_TOO_LARGE');
      expect(result.messages).toHaveLength(0);
    });

    it('byte-by-byte fragmentation delivers the same frames as one chunk', () => {
      const stream = Buffer.concat([frame(0, 1, 1, 'a'), frame(0, 2, 2, ''), frame(2, 3, 3, payloadOf(40)), frame(0, 0xff01, 4, 'p')]);
      const whole = decode('frame', 300, 'server', [stream]);
      const dribbled = decode('frame', 300, 'server', bytesOf(stream));
      expect(whole.messages).toHaveLength(4);
      expect(dribbled).toEqual(whole);
      // Every single split point, too.
      for (let at = 0; at <= stream.length; at++) {
        expect(decode('frame', 300, 'server', [stream.subarray(0, at), stream.subarray(at)])).toEqual(whole);
      }
    });

    it('1000 frames in one chunk', () => {
      const frames = Array.from({ length: 1000 }, (_, index) => frame(0, 1 + (index % 7), index + 1, payloadOf(index % 50, index)));
      const result = decode('frame', 300, 'server', [Buffer.concat(frames)]);
      expect(result.error).toBe('');
      expect(result.messages).toHaveLength(1000);
      result.messages.forEach((message, index) => {
        expect(message.seq).toBe(index + 1);
        expect(message.payload.equals(payloadOf(index % 50, index))).toBe(true);
      });
    });

    it('midMessage is true from the first byte until the frame completes', () => {
      const encoded = frame(0, 1, 1, 'abc');
      expect(decode('frame', 300, 'server', [encoded.subarray(0, 1)]).midMessage).toBe(true);
      expect(decode('frame', 300, 'server', [encoded.subarray(0, 12)]).midMessage).toBe(true);
      expect(decode('frame', 300, 'server', [encoded.subarray(0, 14)]).midMessage).toBe(true);
      expect(decode('frame', 300, 'server', [encoded]).midMessage).toBe(false);
      expect(decode('frame', 300, 'server', [frame(0, 1, 1, '')]).midMessage).toBe(false);
    });

    // Each bad header is reported exactly when the byte that completes the bad field arrives.
    const headerErrors: Array<[string, Buffer, number, string]> = [
      ['magic 0x00', Buffer.from([0x00, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), 1, 'EBAD_MAGIC'],
      ['HTTP GET', Buffer.from('GET / HTTP/1.1\r\n\r\n'), 1, 'EBAD_MAGIC'],
      ['TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x00]), 1, 'EBAD_MAGIC'],
      ['PROXY v1 line', Buffer.from('PROXY TCP4 127.0.0.1 127.0.0.1 1 2\r\n'), 1, 'EBAD_MAGIC'],
      ['type 0', header(0, 0, 0), 4, 'EBAD_TYPE'],
      ['type 0xFF00', header(0, 0xff00, 0), 4, 'EUNKNOWN_CONTROL'],
      ['type 0xFF05', header(0, 0xff05, 0), 4, 'EUNKNOWN_CONTROL'],
      ['type 0xFFFF', header(0, 0xffff, 0), 4, 'EUNKNOWN_CONTROL'],
      ['GOAWAY from a client', header(0, 0xff04, 0), 4, 'EUNEXPECTED_GOAWAY'],
      ['PING 65', header(0, 0xff01, 65), 8, 'EPING_TOO_LARGE'],
      ['PING 1 MiB', header(0, 0xff01, 1 << 20), 8, 'EPING_TOO_LARGE'],
      ['length 0xFFFFFFFF', header(0, 1, 0xffffffff), 8, 'EFRAME_TOO_LARGE'],
      ['bad magic wins over bad flags', Buffer.from([0x00, 0xff, 0, 0]), 1, 'EBAD_MAGIC'],
      ['bad flags win over type 0', Buffer.from([0xeb, 0x04, 0, 0]), 2, 'EBAD_FLAGS'],
    ];
    for (let bit = 2; bit < 8; bit++) headerErrors.push([`flag bit ${bit}`, header(1 << bit, 1, 0), 2, 'EBAD_FLAGS']);

    it.each(headerErrors)('%s fails at the byte that completes the field', (_name, bytes, failAt, code) => {
      expect(decode('frame', 300, 'server', [bytes.subarray(0, failAt - 1)]).error).toBe('');
      expect(decode('frame', 300, 'server', [bytes.subarray(0, failAt)]).error).toBe(code);
      expect(decode('frame', 300, 'server', bytesOf(bytes.subarray(0, failAt))).error).toBe(code);
      // Frames before it are delivered, nothing after it, and the error sticks.
      const result = decode('frame', 300, 'server', [frame(0, 1, 1, 'before'), Buffer.concat([bytes, frame(0, 1, 2, 'after')]), frame(0, 1, 3, 'later')]);
      expect(result.error).toBe(code);
      expect(result.messages.map((m) => m.payload.toString())).toEqual(['before']);
      expect(result.midMessage).toBe(false);
    });

    it('PING payload 64 is accepted, 65 refused, even when maxFrame is larger', () => {
      const ping = decode('frame', 300, 'server', [frame(0, 0xff01, 5, payloadOf(64))]);
      expect(ping.error).toBe('');
      expect(ping.messages[0]).toMatchObject({ type: 0xff01, seq: 5 });
      expect(ping.messages[0].payload.equals(payloadOf(64))).toBe(true);
      expect(decode('frame', 300, 'client', [frame(0, 0xff01, 5, payloadOf(65))]).error).toBe('EPING_TOO_LARGE');
    });

    it('GOAWAY is delivered to a client and refused from a client', () => {
      const goaway = frame(0, 0xff04, 0, '');
      const client = decode('frame', 300, 'client', [goaway]);
      expect(client.error).toBe('');
      expect(client.messages.map((m) => m.type)).toEqual([0xff04]);
      const server = decode('frame', 300, 'server', [goaway]);
      expect(server.error).toBe('EUNEXPECTED_GOAWAY');
      expect(server.messages).toHaveLength(0);
    });

    it('returning false stops the feed and drops the rest of the chunk', () => {
      const stream = Buffer.concat([frame(0, 1, 1, 'a'), frame(0, 1, 2, 'b'), frame(0, 1, 3, 'c')]);
      const result = decode('frame', 300, 'server', [stream], 1);
      expect(result.error).toBe('');
      expect(result.messages.map((m) => m.seq)).toEqual([1]);
    });
  });

  describe('length', () => {
    it.each([300, DEFAULT_MAX_FRAME])('size boundaries with maxFrame %i', (maxFrame) => {
      for (const size of [0, 1, maxFrame - 1, maxFrame]) {
        const payload = payloadOf(size, 3);
        const encoded = encodeMessage('length', payload);
        for (const chunks of [[encoded], [encoded.subarray(0, 2), encoded.subarray(2, 7), encoded.subarray(7)]]) {
          const result = decode('length', maxFrame, 'server', chunks);
          expect(result.error).toBe('');
          expect(result.messages).toHaveLength(1);
          expect(result.messages[0]).toMatchObject({ type: 0, flags: 0, seq: 0 });
          expect(result.messages[0].payload.equals(payload)).toBe(true);
        }
      }
      expect(decode('length', maxFrame, 'server', [lengthPrefix(maxFrame + 1).subarray(0, 3)]).error).toBe('');
      expect(decode('length', maxFrame, 'server', [lengthPrefix(maxFrame + 1)]).error).toBe('EFRAME_TOO_LARGE');
    });

    it('length 0xFFFFFFFF fails at the 4th byte; zero length is an empty message', () => {
      expect(decode('length', 300, 'server', bytesOf(lengthPrefix(0xffffffff))).error).toBe('EFRAME_TOO_LARGE');
      const result = decode('length', 300, 'server', [Buffer.concat([lengthPrefix(0), lengthPrefix(0), encodeMessage('length', Buffer.from('x'))])]);
      expect(result.messages.map((m) => m.payload.toString())).toEqual(['', '', 'x']);
    });

    it('a partial prefix or payload is never delivered', () => {
      const twoBytes = decode('length', 300, 'server', [Buffer.from([0, 0])]);
      expect(twoBytes.messages).toHaveLength(0);
      expect(twoBytes.midMessage).toBe(true);
      const partial = decode('length', 300, 'server', [Buffer.concat([lengthPrefix(10), Buffer.from('abc')])]);
      expect(partial.messages).toHaveLength(0);
      expect(partial.midMessage).toBe(true);
    });

    it('byte-by-byte fragmentation and 1000 messages in one chunk', () => {
      const stream = Buffer.concat(Array.from({ length: 1000 }, (_, index) => encodeMessage('length', payloadOf(index % 40, index))));
      const whole = decode('length', 300, 'server', [stream]);
      expect(whole.messages).toHaveLength(1000);
      expect(decode('length', 300, 'server', bytesOf(stream.subarray(0, 400)))).toEqual(decode('length', 300, 'server', [stream.subarray(0, 400)]));
      whole.messages.forEach((message, index) => expect(message.payload.equals(payloadOf(index % 40, index))).toBe(true));
    });
  });

  describe('line', () => {
    const lines = (result: Decoded) => result.messages.map((m) => m.payload.toString('latin1'));

    it('strips one \\r only directly before \\n, keeps a lone \\r, delivers empty lines', () => {
      const result = decode('line', 300, 'server', [Buffer.from('\nabc\r\ndef\n\r\n\n a\rb \r\r\nend')]);
      expect(result.error).toBe('');
      expect(lines(result)).toEqual(['', 'abc', 'def', '', '', ' a\rb \r']);
      expect(result.midMessage).toBe(true);
      expect(result.messages[0]).toMatchObject({ type: 0, flags: 0, seq: 0 });
    });

    it('\\r and \\n split across feeds', () => {
      expect(lines(decode('line', 300, 'server', [Buffer.from('abc\r'), Buffer.from('\nx\n')]))).toEqual(['abc', 'x']);
      expect(lines(decode('line', 300, 'server', [Buffer.from('abc'), Buffer.from('\r'), Buffer.from('\n')]))).toEqual(['abc']);
      expect(lines(decode('line', 300, 'server', [Buffer.from('\r'), Buffer.from('\n')]))).toEqual(['']);
    });

    it('is binary-safe: NUL and invalid UTF-8 are bytes', () => {
      const line = Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80]);
      const result = decode('line', 300, 'server', [Buffer.concat([line, Buffer.from('\n')])]);
      expect(result.messages[0].payload.equals(line)).toBe(true);
      const dribbled = decode('line', 300, 'server', bytesOf(Buffer.concat([line, Buffer.from('\r\n')])));
      expect(dribbled.messages[0].payload.equals(line)).toBe(true);
    });

    it.each([300, DEFAULT_MAX_FRAME])('size boundaries with maxFrame %i', (maxFrame) => {
      const at = (size: number, ending: string, split: boolean) => {
        const bytes = Buffer.concat([Buffer.alloc(size, 0x61), Buffer.from(ending)]);
        return decode('line', maxFrame, 'server', split ? [bytes.subarray(0, size >> 1), bytes.subarray(size >> 1)] : [bytes]);
      };
      for (const split of [false, true]) {
        for (const size of [0, 1, maxFrame - 1, maxFrame]) {
          expect(at(size, '\n', split).messages[0].payload.length).toBe(size);
          expect(at(size, '\r\n', split).messages[0].payload.length).toBe(size);
        }
        expect(at(maxFrame + 1, '\n', split).error).toBe('EFRAME_TOO_LARGE');
        expect(at(maxFrame + 1, '\r\n', split).error).toBe('EFRAME_TOO_LARGE');
        // maxFrame + 1 bytes held without '\n' is allowed (a '\r' may follow); one more is not.
        expect(at(maxFrame + 1, '', split).error).toBe('');
        expect(at(maxFrame + 2, '', split).error).toBe('EFRAME_TOO_LARGE');
      }
    });

    it('2 MiB without \\n fails without buffering past maxFrame + 1', () => {
      const maxFrame = DEFAULT_MAX_FRAME;
      const chunks = Array.from({ length: 32 }, () => Buffer.alloc(64 * 1024, 0x62));
      const result = decode('line', maxFrame, 'server', [Buffer.from('ok\n'), ...chunks, Buffer.from('\nlater\n')]);
      expect(result.error).toBe('EFRAME_TOO_LARGE');
      expect(lines(result)).toEqual(['ok']);
      if (implementation === 'ts') {
        const decoder = new Decoder('line', maxFrame, 'server');
        let failedAt = -1;
        chunks.forEach((chunk, index) => {
          const code = decoder.feed(chunk, () => undefined);
          expect(decoder.bufferedBytes).toBeLessThanOrEqual(maxFrame + 1);
          if (code !== '' && failedAt < 0) failedAt = index;
        });
        expect(failedAt).toBe(16); // the 17th 64 KiB chunk passes maxFrame + 1
        expect(decoder.bufferedBytes).toBe(0);
      }
    });

    it('returning false stops the feed', () => {
      expect(lines(decode('line', 300, 'server', [Buffer.from('a\nb\nc\n'), Buffer.from('d\n')], 2))).toEqual(['a', 'b', 'd']);
    });
  });

  describe('raw', () => {
    it('delivers each chunk as one message and never fails', () => {
      const chunks = [Buffer.from([0xeb, 0xff]), Buffer.alloc(0), Buffer.from('GET / HTTP/1.1\r\n'), payloadOf(5000)];
      const result = decode('raw', 300, 'server', chunks);
      expect(result.error).toBe('');
      expect(result.midMessage).toBe(false);
      expect(result.messages.map((m) => m.payload)).toEqual([chunks[0], chunks[2], chunks[3]]);
    });
  });
});

describe('encodeMessage', () => {
  it('encodes length, line and raw; refuses frame', () => {
    expect(encodeMessage('length', Buffer.from('ab'))).toEqual(Buffer.from([0, 0, 0, 2, 0x61, 0x62]));
    expect(encodeMessage('line', Buffer.from('ab'))).toEqual(Buffer.from('ab\n'));
    expect(encodeMessage('line', new Uint8Array(0))).toEqual(Buffer.from('\n'));
    const raw = Uint8Array.of(1, 2, 3);
    expect(encodeMessage('raw', raw)).toEqual(Buffer.from([1, 2, 3]));
    expect(() => encodeMessage('frame', raw)).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION' }));
  });

  it('a line payload round-trips through the decoder', () => {
    const decoder = new Decoder('line', 300, 'client');
    const got: string[] = [];
    decoder.feed(Buffer.concat([encodeMessage('line', Buffer.from('one')), encodeMessage('line', Buffer.from(''))]), (_t, _f, _s, payload) => {
      got.push(payload.toString());
    });
    expect(got).toEqual(['one', '']);
  });
});
