/**
 * Differential test: src/protocol/codec.ts and native/codec.cc (through the addon's
 * decode probe) must deliver identical messages and identical errors for the
 * same byte streams, however they are split (docs/reliability.md T05, T14).
 * Streams are seeded-random: valid frames, corrupted headers, garbage, lines
 * with \r and \n, random split points. A failure prints the seed to replay.
 */
import { describe, expect, it } from 'vitest';
import { nativeLoadError, tryLoadNative } from '../../src/engines/native/binding';
import { Decoder, type Role } from '../../src/protocol/codec';
import { framingNumber, framings, type Framing } from '../../src/protocol/constants';

interface Decoded {
  messages: Array<{ type: number; flags: number; seq: number; payload: Buffer }>;
  error: string;
  midMessage: boolean;
}

/** mulberry32: small, seedable, good enough to pick bytes and split points. */
function randomFrom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

function decodeTs(framing: Framing, maxFrame: number, role: Role, chunks: Buffer[], stopEvery: number): Decoded {
  const decoder = new Decoder(framing, maxFrame, role);
  const messages: Decoded['messages'] = [];
  let error = '';
  for (const chunk of chunks) {
    error = decoder.feed(chunk, (type, flags, seq, payload) => {
      messages.push({ type, flags, seq, payload: Buffer.from(payload) });
      return stopEvery === 0 || messages.length % stopEvery !== 0;
    });
  }
  return { messages, error, midMessage: decoder.midMessage };
}

function decodeNative(framing: Framing, maxFrame: number, role: Role, chunks: Buffer[], stopEvery: number): Decoded {
  const addon = tryLoadNative();
  if (!addon) throw nativeLoadError() ?? new Error('addon not loaded');
  const decode = addon.decode as unknown as (...args: unknown[]) => Decoded;
  return decode(framingNumber[framing], maxFrame, role === 'server' ? 0 : 1, chunks, stopEvery);
}

const interestingTypes = [1, 2, 0x1234, 0xfeff, 0, 0xff00, 0xff01, 0xff02, 0xff03, 0xff04, 0xff05, 0xffff];

/** One message of the framing, usually valid, sometimes with a corrupted header or size. */
function message(random: () => number, framing: Framing, maxFrame: number): Buffer {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const sizes = [0, 1, 2, maxFrame - 1, maxFrame, maxFrame + 1, Math.floor(random() * (maxFrame + 2)), 64, 65];
  // Mostly sizes within maxFrame, so that streams go on past their first message.
  const size = random() < 0.7 ? Math.floor(random() * (maxFrame + 1)) : Math.max(0, pick(sizes));
  const payload = Buffer.alloc(size);
  for (let index = 0; index < size; index++) payload[index] = random() < 0.1 ? pick([0x0a, 0x0d, 0xeb, 0x00]) : Math.floor(random() * 256);
  if (framing === 'frame') {
    const header = Buffer.alloc(12);
    header[0] = random() < 0.97 ? 0xeb : Math.floor(random() * 256);
    header[1] = random() < 0.9 ? Math.floor(random() * 4) : Math.floor(random() * 256);
    header.writeUInt16BE(random() < 0.7 ? 1 + Math.floor(random() * 0xfeff) : pick(interestingTypes), 2);
    header.writeUInt32BE(random() < 0.95 ? size : pick([0xffffffff, maxFrame + 1, 65, size + 1]) >>> 0, 4);
    header.writeUInt32BE(Math.floor(random() * 0x100000000), 8);
    return Buffer.concat([header, payload]);
  }
  if (framing === 'length') {
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(random() < 0.95 ? size : pick([0xffffffff, maxFrame + 1, size + 3]) >>> 0, 0);
    return Buffer.concat([prefix, payload]);
  }
  if (framing === 'line') {
    const ending = pick(['\n', '\r\n', '\r\r\n', '', '\n\n', '\r']);
    return Buffer.concat([payload, Buffer.from(ending)]);
  }
  return payload;
}

function stream(random: () => number, framing: Framing, maxFrame: number): Buffer {
  const parts: Buffer[] = [];
  const count = 1 + Math.floor(random() * 8);
  for (let index = 0; index < count; index++) {
    if (random() < 0.08) {
      const garbage = Buffer.alloc(Math.floor(random() * 40));
      for (let at = 0; at < garbage.length; at++) garbage[at] = Math.floor(random() * 256);
      parts.push(garbage);
    } else {
      parts.push(message(random, framing, maxFrame));
    }
  }
  const bytes = Buffer.concat(parts);
  // Occasionally flip one byte anywhere, or cut the tail off (EOF mid-message).
  if (bytes.length > 0 && random() < 0.15) bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
  return random() < 0.15 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes;
}

function split(random: () => number, bytes: Buffer): Buffer[] {
  const mode = random();
  if (mode < 0.1) return [...bytes].map((byte) => Buffer.of(byte));
  if (mode < 0.25) return [bytes];
  const chunks: Buffer[] = [];
  let position = 0;
  while (position < bytes.length) {
    const size = random() < 0.1 ? 0 : 1 + Math.floor(random() * Math.min(64, bytes.length));
    chunks.push(bytes.subarray(position, position + size));
    position += size;
  }
  return chunks;
}

function same(left: Decoded, right: Decoded): boolean {
  if (left.error !== right.error || left.midMessage !== right.midMessage) return false;
  if (left.messages.length !== right.messages.length) return false;
  return left.messages.every((message, index) => {
    const other = right.messages[index];
    return message.type === other.type && message.flags === other.flags && message.seq === other.seq && message.payload.equals(other.payload);
  });
}

describe('codec differential: ts and native agree', () => {
  const casesPerFraming = 2500;

  it.each(framings)('%s framing', (framing) => {
    const maxFrames = framing === 'raw' ? [300] : [0, 1, 5, 16, 64, 300];
    let errors = 0;
    let delivered = 0;
    for (let seed = 1; seed <= casesPerFraming; seed++) {
      const random = randomFrom(seed * 7919 + framingNumber[framing]);
      const maxFrame = maxFrames[Math.floor(random() * maxFrames.length)];
      const role: Role = random() < 0.5 ? 'server' : 'client';
      const stopEvery = random() < 0.1 ? 1 + Math.floor(random() * 3) : 0;
      const chunks = split(random, stream(random, framing, maxFrame));
      const fromTs = decodeTs(framing, maxFrame, role, chunks, stopEvery);
      const fromNative = decodeNative(framing, maxFrame, role, chunks, stopEvery);
      if (!same(fromTs, fromNative)) {
        // Show the whole case only when they differ (toEqual on thousands of cases is slow).
        expect({ seed, framing, maxFrame, role, stopEvery, chunks: chunks.map((c) => c.toString('hex')), native: fromNative }).toEqual({
          seed, framing, maxFrame, role, stopEvery, chunks: chunks.map((c) => c.toString('hex')), native: fromTs,
        });
      }
      for (const message of fromTs.messages) {
        if (framing !== 'raw') expect(message.payload.length).toBeLessThanOrEqual(maxFrame);
      }
      if (fromTs.error !== '') errors++;
      delivered += fromTs.messages.length;
    }
    // The generator must exercise both sides: streams that fail and messages that pass.
    if (framing !== 'raw') expect(errors).toBeGreaterThan(casesPerFraming / 20);
    expect(delivered).toBeGreaterThan(casesPerFraming);
  });

  it('each split of a stream decodes like the whole stream (native)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = randomFrom(seed);
      const framing = framings[seed % 3];
      const bytes = stream(random, framing, 64);
      const whole = decodeNative(framing, 64, 'client', [bytes], 0);
      const at = Math.floor(random() * (bytes.length + 1));
      const halves = decodeNative(framing, 64, 'client', [bytes.subarray(0, at), bytes.subarray(at)], 0);
      // Every check depends only on bytes received so far, never on where a feed ended.
      if (!same(whole, halves)) expect({ seed, at, halves }).toEqual({ seed, at, halves: whole });
    }
  });
});
