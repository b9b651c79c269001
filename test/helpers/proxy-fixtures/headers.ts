/**
 * PROXY protocol v2 headers for tests (test/proxy*.test.ts): built field by
 * field from the spec, with a correct CRC32C TLV on request.
 */
import { addressBytes, crc32c } from '../../../src/proxy/header';

export const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header: ver/cmd byte, fam byte, address block, TLVs ([type, value]); crc adds a correct CRC32C TLV. */
export function v2(versionCommand: number, family: number, block: Buffer, tlvs: Array<[number, Buffer]> = [], crc = false): Buffer {
  const parts = tlvs.map(([type, value]) => Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value]));
  if (crc) parts.push(Buffer.from([0x03, 0, 4, 0, 0, 0, 0]));
  const body = Buffer.concat([block, ...parts]);
  const head = Buffer.alloc(4);
  head[0] = versionCommand;
  head[1] = family;
  head.writeUInt16BE(body.length, 2);
  const header = Buffer.concat([SIGNATURE, head, body]);
  if (crc) header.writeUInt32BE(crc32c(header), header.length - 4);
  return header;
}

export function inet4(source: string, destination: string, sourcePort: number, destinationPort: number): Buffer {
  const block = Buffer.alloc(12);
  block.set(addressBytes(source)!.subarray(12), 0);
  block.set(addressBytes(destination)!.subarray(12), 4);
  block.writeUInt16BE(sourcePort, 8);
  block.writeUInt16BE(destinationPort, 10);
  return block;
}

export function inet6(source: string, destination: string, sourcePort: number, destinationPort: number): Buffer {
  const block = Buffer.alloc(36);
  block.set(addressBytes(source)!, 0);
  block.set(addressBytes(destination)!, 16);
  block.writeUInt16BE(sourcePort, 32);
  block.writeUInt16BE(destinationPort, 34);
  return block;
}


/**
 * The value of a PP2_TYPE_SSL TLV (0x20): client bits (1 SSL, 2 cert on this
 * connection, 4 cert in the session), verify (0 = verified), sub-TLVs
 * ([type, value]: 0x21 version, 0x22 CN, 0x23 cipher, 0x24 sig alg, 0x25 key alg).
 */
export function ssl(client: number, verify: number, subs: Array<[number, Buffer | string]> = []): Buffer {
  const head = Buffer.alloc(5);
  head[0] = client;
  head.writeUInt32BE(verify, 1);
  const parts = subs.map(([type, raw]) => {
    const value = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
    return Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value]);
  });
  return Buffer.concat([head, ...parts]);
}
