/**
 * The PROXY protocol header parser (v1 text, v2 binary; HAProxy's
 * doc/proxy-protocol.txt) and the trusted-source check, used by the net
 * engine. The same parser as native/proxy.cc, rule for rule: test/proxy/proxy.test.ts
 * runs both over the same inputs and split points.
 *
 * Owns the bytes of one connection's header while it arrives (at most 107 for
 * v1, 16 + 65535 for v2), and what it said: addresses, and the TLS details of
 * the SSL / AUTHORITY / ALPN TLVs (`connection.tls`; decodeProxyTls reads the
 * native engine's encoding of them). Does not own the socket or the header timeout.
 */

import type { Socket } from 'node:net';

/** What {@link ProxyParser.feed} found. */
export type ProxyStatus = 'need-more' | 'done' | 'error';

/** The result of one feed. */
export interface ProxyFeed {
  status: ProxyStatus;
  /** Bytes of this feed that belonged to the header; after them comes protocol data (on 'done'). */
  consumed: number;
}

/** v1 line limit, CRLF included (spec section 2.1). */
export const PROXY_V1_MAX_LENGTH = 107;
const V2_HEADER_LENGTH = 16;
const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const FAMILY_UNSPEC = 0;
const FAMILY_INET = 1;
const FAMILY_INET6 = 2;
const FAMILY_UNIX = 3;
const TRANSPORT_STREAM = 1;
const TRANSPORT_DGRAM = 2;
const TLV_ALPN = 0x01;
const TLV_AUTHORITY = 0x02;
const TLV_CRC32C = 0x03;
const TLV_SSL = 0x20;
const SUBTLV_SSL_VERSION = 0x21;
const SUBTLV_SSL_CN = 0x22;
const SUBTLV_SSL_CIPHER = 0x23;
/** PP2_CLIENT_SSL / PP2_CLIENT_CERT_CONN / PP2_CLIENT_CERT_SESS bits of the SSL TLV's client byte. */
const CLIENT_SSL = 0x01;
const CLIENT_CERT_CONN = 0x02;
const CLIENT_CERT_SESS = 0x04;

/**
 * What the load balancer in front said about the client's TLS connection
 * (PROXY v2 SSL TLV with its version, CN and cipher sub-TLVs, and the
 * AUTHORITY and ALPN TLVs; HAProxy `send-proxy-v2-ssl-cn`). Strings are the
 * TLV bytes decoded as UTF-8; a field the proxy did not send is undefined.
 */
export interface ConnectionTls {
  /** The server name the client asked for (SNI, the AUTHORITY TLV). */
  sni: string | undefined;
  /** The negotiated application protocol (the ALPN TLV). */
  alpn: string | undefined;
  /** e.g. 'TLSv1.3' */
  version: string | undefined;
  /** e.g. 'TLS_AES_256_GCM_SHA384' */
  cipher: string | undefined;
  clientCertificate: {
    /** The client sent a certificate (on this connection or the TLS session it resumed). */
    present: boolean;
    /** It was sent and the proxy verified it (the TLV's verify field is 0). */
    verified: boolean;
    /** Its subject's common name (only with `send-proxy-v2-ssl-cn`). */
    cn: string | undefined;
  };
}

/** The raw fields {@link ConnectionTls} is made of; both parsers produce these (test/proxy/proxy.test.ts compares them). */
export interface ProxyTlsFields {
  /** The SSL TLV's client byte. */
  client: number;
  /** The SSL TLV's verify field (0: verified, or no certificate). */
  verify: number;
  sni?: Uint8Array;
  alpn?: Uint8Array;
  version?: Uint8Array;
  cipher?: Uint8Array;
  cn?: Uint8Array;
}

const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');

const ENCODED_STRINGS = ['sni', 'alpn', 'version', 'cipher', 'cn'] as const;

/**
 * The TLS details as native/proxy.cc appendProxyTls encodes them after the
 * address in an OPEN record's slab (docs/internals.md "Batches"): client u8,
 * verify u32 LE, a presence byte (bit i: ENCODED_STRINGS[i]), then each present
 * string as u16 LE length + bytes. Undefined when the bytes do not fit that.
 */
export function decodeProxyTls(bytes: Buffer): ProxyTlsFields | undefined {
  if (bytes.length < 6) return undefined;
  const fields: ProxyTlsFields = { client: bytes[0]!, verify: bytes.readUInt32LE(1) };
  const present = bytes[5]!;
  let at = 6;
  for (let i = 0; i < ENCODED_STRINGS.length; i++) {
    if ((present & (1 << i)) === 0) continue;
    if (bytes.length - at < 2) return undefined;
    const length = bytes.readUInt16LE(at);
    if (bytes.length - at - 2 < length) return undefined;
    fields[ENCODED_STRINGS[i]!] = bytes.subarray(at + 2, at + 2 + length);
    at += 2 + length;
  }
  return at === bytes.length ? fields : undefined;
}

/** The connection's view of the raw TLS fields (the same on every engine). */
export function connectionTls(fields: ProxyTlsFields): ConnectionTls {
  const present = (fields.client & (CLIENT_CERT_CONN | CLIENT_CERT_SESS)) !== 0;
  return {
    sni: text(fields.sni),
    alpn: text(fields.alpn),
    version: text(fields.version),
    cipher: text(fields.cipher),
    // HAProxy leaves verify 0 when no certificate came, so 0 alone does not mean verified.
    clientCertificate: { present, verified: present && fields.verify === 0, cn: text(fields.cn) },
  };
}

function addressBlock(family: number): number {
  return family === FAMILY_INET ? 12 : family === FAMILY_INET6 ? 36 : family === FAMILY_UNIX ? 216 : 0;
}

/** Decimal without leading zeros ("0" itself is fine). */
function parseDecimal(text: string, maxDigits: number, max: number): number | undefined {
  if (text.length === 0 || text.length > maxDigits) return undefined;
  if (text.length > 1 && text[0] === '0') return undefined;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i) - 48;
    if (code < 0 || code > 9) return undefined;
    value = value * 10 + code;
  }
  return value > max ? undefined : value;
}

/** Four decimal octets, no leading zeros. */
export function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const value = parseDecimal(parts[i]!, 3, 255);
    if (value === undefined) return undefined;
    out[i] = value;
  }
  return out;
}

function parseGroups(text: string, allowIpv4: boolean): number[] | undefined {
  if (text.length === 0) return [];
  const groups = text.split(':');
  const words: number[] = [];
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i]!;
    if (group.length === 0) return undefined;
    if (group.includes('.')) {
      const v4 = allowIpv4 && i === groups.length - 1 && words.length <= 6 ? parseIpv4(group) : undefined;
      if (!v4) return undefined;
      words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      return words;
    }
    if (group.length > 4 || words.length >= 8 || !/^[0-9a-fA-F]+$/.test(group)) return undefined;
    words.push(parseInt(group, 16));
  }
  return words;
}

/** RFC 4291 section 2.2 text forms (no zone ids). */
export function parseIpv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const gap = text.indexOf('::');
  let words: number[];
  if (gap < 0) {
    const all = parseGroups(text, true);
    if (!all || all.length !== 8) return undefined;
    words = all;
  } else {
    const head = parseGroups(text.slice(0, gap), false);
    const tail = parseGroups(text.slice(gap + 2), true);
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

export function formatIpv4(bytes: Uint8Array, at = 0): string {
  return `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
}

/** node:net's spelling: RFC 5952, and ::ffff:a.b.c.d for IPv4-mapped addresses. */
export function formatIpv6(bytes: Uint8Array, at = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[at + 2 * i]! << 8) | bytes[at + 2 * i + 1]!);
  if (words[5] === 0xffff && words.slice(0, 5).every((word) => word === 0)) return `::ffff:${formatIpv4(bytes, at + 12)}`;
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return words.map((word) => word.toString(16)).join(':');
  const head = words.slice(0, bestStart).map((word) => word.toString(16)).join(':');
  const tail = words.slice(bestStart + bestLength).map((word) => word.toString(16)).join(':');
  return `${head}::${tail}`;
}

let crcTable: Uint32Array | undefined;

/** CRC32C (Castagnoli), as the v2 PP2_TYPE_CRC32C TLV carries it. */
export function crc32c(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Incremental parser of one connection's PROXY header. */
export class ProxyParser {
  #status: ProxyStatus = 'need-more';
  #version = 0;
  #received = 0;
  #expected = 0;
  #buffer: Buffer = Buffer.alloc(PROXY_V1_MAX_LENGTH);
  /** 'done': the header named the client (v1 TCP4/TCP6, v2 PROXY over INET/INET6); else use the real peer. */
  hasAddress = false;
  sourceAddress = '';
  sourcePort = 0;
  destinationAddress = '';
  destinationPort = 0;
  /**
   * 'done': the v2 header's SSL TLV said the client connected over TLS (PP2_CLIENT_SSL);
   * with the AUTHORITY and ALPN TLVs. Undefined otherwise (and for v1, which has no TLVs).
   */
  tls: ProxyTlsFields | undefined;

  get status(): ProxyStatus {
    return this.#status;
  }
  /** Header bytes taken so far (0: the peer sent nothing yet). */
  get received(): number {
    return this.#received;
  }
  /** 1 or 2 once the signature told, else 0. */
  get version(): number {
    return this.#version;
  }

  /** Feeds bytes; the header is complete when the status is 'done'. An error is sticky. */
  feed(data: Uint8Array): ProxyFeed {
    if (this.#status !== 'need-more') return { status: this.#status, consumed: 0 };
    let at = 0;
    while (this.#version === 0 && at < data.length) {
      if (!this.#takeSignature(data[at++]!)) return this.#fail();
    }
    if (this.#version === 1) return this.#feedV1(data, at);
    if (this.#version === 2) return this.#feedV2(data, at);
    return { status: this.#status, consumed: data.length };
  }

  #fail(): ProxyFeed {
    this.#status = 'error';
    this.#buffer = Buffer.alloc(0);
    return { status: 'error', consumed: 0 };
  }

  #done(consumed: number): ProxyFeed {
    this.#status = 'done';
    this.#buffer = Buffer.alloc(0);
    return { status: 'done', consumed };
  }

  #takeSignature(byte: number): boolean {
    this.#buffer[this.#received++] = byte;
    const signature = this.#buffer[0] === V1_SIGNATURE[0] ? V1_SIGNATURE : V2_SIGNATURE;
    if (byte !== signature[this.#received - 1]) return false;
    if (this.#received === signature.length) this.#version = signature === V1_SIGNATURE ? 1 : 2;
    return true;
  }

  #feedV1(data: Uint8Array, at: number): ProxyFeed {
    for (; at < data.length; at++) {
      const byte = data[at]!;
      const previous = this.#buffer[this.#received - 1];
      // The spec forbids tolerating a lone CR or LF.
      if (previous === 0x0d && byte !== 0x0a) return this.#fail();
      if (byte === 0x0a && previous !== 0x0d) return this.#fail();
      this.#buffer[this.#received++] = byte;
      if (byte === 0x0a) return this.#finishV1() ? this.#done(at + 1) : this.#fail();
      if (this.#received >= PROXY_V1_MAX_LENGTH) return this.#fail(); // no CRLF within 107 bytes
    }
    return { status: this.#status, consumed: data.length };
  }

  #finishV1(): boolean {
    const line = this.#buffer.toString('latin1', V1_SIGNATURE.length, this.#received - 2);
    if (line.startsWith('UNKNOWN') && (line.length === 7 || line[7] === ' ')) return true; // the rest is ignored
    const v4 = line.startsWith('TCP4 ');
    if (!v4 && !line.startsWith('TCP6 ')) return false;
    const fields = line.slice(5).split(' ');
    if (fields.length !== 4) return false;
    const parse = v4 ? parseIpv4 : parseIpv6;
    const format = v4 ? formatIpv4 : formatIpv6;
    const source = parse(fields[0]!);
    const destination = parse(fields[1]!);
    const sourcePort = parseDecimal(fields[2]!, 5, 65535);
    const destinationPort = parseDecimal(fields[3]!, 5, 65535);
    if (!source || !destination || sourcePort === undefined || destinationPort === undefined) return false;
    this.sourceAddress = format(source);
    this.destinationAddress = format(destination);
    this.sourcePort = sourcePort;
    this.destinationPort = destinationPort;
    this.hasAddress = true;
    return true;
  }

  #feedV2(data: Uint8Array, at: number): ProxyFeed {
    while (this.#received < V2_HEADER_LENGTH && at < data.length) {
      this.#buffer[this.#received++] = data[at++]!;
      if (this.#received === V2_HEADER_LENGTH) {
        if (!this.#checkV2Fixed()) return this.#fail(); // fail early: do not wait for a bad header's body
        this.#expected = V2_HEADER_LENGTH + this.#buffer.readUInt16BE(14);
        const grown = Buffer.alloc(this.#expected);
        this.#buffer.copy(grown, 0, 0, V2_HEADER_LENGTH);
        this.#buffer = grown;
      }
    }
    if (this.#received < V2_HEADER_LENGTH) return { status: this.#status, consumed: data.length };
    const take = Math.min(this.#expected - this.#received, data.length - at);
    this.#buffer.set(data.subarray(at, at + take), this.#received);
    this.#received += take;
    at += take;
    if (this.#received < this.#expected) return { status: this.#status, consumed: data.length };
    return this.#finishV2() ? this.#done(at) : this.#fail();
  }

  #checkV2Fixed(): boolean {
    const versionCommand = this.#buffer[12]!;
    if (versionCommand >> 4 !== 2) return false;
    const command = versionCommand & 0x0f;
    if (command > 1) return false;
    if (command === 0) return true; // LOCAL: the family is ignored
    const family = this.#buffer[13]! >> 4;
    const transport = this.#buffer[13]! & 0x0f;
    if (family > FAMILY_UNIX || transport > TRANSPORT_DGRAM) return false;
    return this.#buffer.readUInt16BE(14) >= addressBlock(family);
  }

  #finishV2(): boolean {
    const buffer = this.#buffer;
    if ((buffer[12]! & 0x0f) === 0) return true; // LOCAL: a health check; the real peer
    const family = buffer[13]! >> 4;
    const transport = buffer[13]! & 0x0f;
    if (family === FAMILY_UNSPEC) return true; // unknown protocol: the real peer
    // TLVs fill the rest exactly; a TLV that overruns the header is malformed.
    const end = this.#expected;
    let at = V2_HEADER_LENGTH + addressBlock(family);
    let crcAt = 0;
    // A repeated ALPN, AUTHORITY or SSL TLV (or SSL sub-TLV): the last one counts.
    let ssl: Uint8Array | undefined;
    let alpn: Uint8Array | undefined;
    let authority: Uint8Array | undefined;
    while (at < end) {
      if (end - at < 3) return false;
      const type = buffer[at]!;
      const size = buffer.readUInt16BE(at + 1);
      if (end - at - 3 < size) return false;
      const value = buffer.subarray(at + 3, at + 3 + size);
      if (type === TLV_CRC32C) {
        if (size !== 4 || crcAt !== 0) return false;
        crcAt = at + 3;
      } else if (type === TLV_SSL) {
        ssl = value;
      } else if (type === TLV_ALPN) {
        alpn = value;
      } else if (type === TLV_AUTHORITY) {
        authority = value;
      }
      at += 3 + size;
    }
    if (crcAt !== 0) {
      const carried = buffer.readUInt32BE(crcAt);
      buffer.fill(0, crcAt, crcAt + 4);
      if (crc32c(buffer.subarray(0, end)) !== carried) return false;
    }
    if (ssl) {
      const tls = parseSslTlv(ssl);
      if (!tls) return false;
      if ((tls.client & CLIENT_SSL) !== 0) {
        // Copies: the header buffer is dropped once the parser is done.
        if (alpn) tls.alpn = Uint8Array.from(alpn);
        if (authority) tls.sni = Uint8Array.from(authority);
        this.tls = tls;
      }
    }
    if (transport !== TRANSPORT_STREAM) return true; // DGRAM/UNSPEC over a TCP listener: the real peer
    const block = V2_HEADER_LENGTH;
    if (family === FAMILY_INET) {
      this.sourceAddress = formatIpv4(buffer, block);
      this.destinationAddress = formatIpv4(buffer, block + 4);
      this.sourcePort = buffer.readUInt16BE(block + 8);
      this.destinationPort = buffer.readUInt16BE(block + 10);
      this.hasAddress = true;
    } else if (family === FAMILY_INET6) {
      this.sourceAddress = formatIpv6(buffer, block);
      this.destinationAddress = formatIpv6(buffer, block + 16);
      this.sourcePort = buffer.readUInt16BE(block + 32);
      this.destinationPort = buffer.readUInt16BE(block + 34);
      this.hasAddress = true;
    }
    return true; // UNIX: the real peer
  }
}

/**
 * The SSL TLV's value: client (u8), verify (u32), then sub-TLVs that fill it
 * exactly (version, CN, cipher kept; others skipped). Undefined when malformed.
 */
function parseSslTlv(value: Uint8Array): ProxyTlsFields | undefined {
  if (value.length < 5) return undefined;
  const view = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const fields: ProxyTlsFields = { client: view[0]!, verify: view.readUInt32BE(1) };
  let at = 5;
  while (at < view.length) {
    if (view.length - at < 3) return undefined;
    const type = view[at]!;
    const size = view.readUInt16BE(at + 1);
    if (view.length - at - 3 < size) return undefined;
    const sub = Uint8Array.from(view.subarray(at + 3, at + 3 + size));
    if (type === SUBTLV_SSL_VERSION) fields.version = sub;
    else if (type === SUBTLV_SSL_CN) fields.cn = sub;
    else if (type === SUBTLV_SSL_CIPHER) fields.cipher = sub;
    at += 3 + size;
  }
  return fields;
}

/**
 * The trusted entry for peers of a Unix socket listener, which have no
 * address to match (nginx spells it `set_real_ip_from unix:`): only local
 * processes allowed by the file's permissions can connect there.
 */
export const PROXY_TRUST_UNIX = 'unix';

/** One trusted network, IPv4 kept as IPv4-mapped IPv6 (prefix + 96). */
export interface ProxyNetwork {
  bytes: Uint8Array;
  prefix: number;
}

/** "a.b.c.d", "a.b.c.d/n", "x::y", "x::y/n"; undefined when malformed. */
export function parseProxyNetwork(text: string): ProxyNetwork | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const v6 = address.includes(':');
  const maxPrefix = v6 ? 128 : 32;
  const prefix = slash < 0 ? maxPrefix : parseDecimal(text.slice(slash + 1), 3, maxPrefix);
  if (prefix === undefined) return undefined;
  const bytes = addressBytes(address);
  if (!bytes) return undefined;
  return { bytes, prefix: v6 ? prefix : prefix + 96 };
}

/** 16 bytes of an IPv4 (mapped) or IPv6 text address; undefined when malformed. */
export function addressBytes(text: string): Uint8Array | undefined {
  if (text.includes(':')) return parseIpv6(text);
  const v4 = parseIpv4(text);
  if (!v4) return undefined;
  const bytes = new Uint8Array(16);
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  bytes.set(v4, 12);
  return bytes;
}

/** Whether `address` (16 bytes, see {@link addressBytes}) lies in one of `networks`. */
export function proxyTrusted(networks: readonly ProxyNetwork[], address: Uint8Array): boolean {
  for (const network of networks) {
    const whole = network.prefix >> 3;
    const rest = network.prefix & 7;
    let match = true;
    for (let i = 0; i < whole && match; i++) match = network.bytes[i] === address[i];
    if (match && rest !== 0) {
      const mask = (0xff << (8 - rest)) & 0xff;
      match = (network.bytes[whole]! & mask) === (address[whole]! & mask);
    }
    if (match) return true;
  }
  return false;
}

/** What a connection's PROXY header said, and the bytes that followed it in the same read. */
export interface ProxyHeader {
  remoteAddress: string;
  remotePort: number;
  /** The client's TLS connection to the proxy, when the header described it. */
  tls: ConnectionTls | undefined;
  /** Protocol data that arrived with the header (feed it before anything else). */
  rest: Buffer | undefined;
}

/** Why a connection was aborted before its header completed. */
export type ProxyAbort = 'EPROXY_HEADER' | 'EPROXY_TIMEOUT' | 'EPROXY_UNTRUSTED';

/**
 * The net engine's gate: reads the PROXY header of each new socket before the
 * engine serves it. Untrusted sources are aborted at once; a malformed header,
 * a FIN inside a header or no complete header within `timeout` ms abort too.
 * A socket that closes before sending a byte (a load balancer's TCP check) or
 * fails with a socket error is dropped quietly: `aborted(undefined)`.
 * Runs on the JS thread; one timer per waiting socket, cleared on decision.
 */
export class ProxyReceiver {
  readonly #networks: ProxyNetwork[];
  readonly #trustUnix: boolean;
  readonly #timeout: number;
  readonly #waiting = new Set<() => void>();

  constructor(options: { trusted: readonly string[]; timeout: number }) {
    this.#networks = options.trusted.map((entry) => parseProxyNetwork(entry)).filter((n): n is ProxyNetwork => n !== undefined);
    this.#trustUnix = options.trusted.includes(PROXY_TRUST_UNIX);
    this.#timeout = options.timeout;
  }

  /**
   * Waits for the header of `socket`. Exactly one of `ready` / `aborted` is
   * called. `ready` runs inside the socket's 'data' event, so listeners the
   * caller adds in it receive every later chunk; `rest` carries the bytes after
   * the header from the current one.
   */
  receive(socket: Socket, ready: (header: ProxyHeader) => void, aborted: (code: ProxyAbort | undefined) => void): void {
    // A Unix socket peer has no address: trusted only through the "unix" entry.
    // (A TCP socket reset before this has none either; it closes quietly whichever way it goes.)
    const unixPeer = socket.remoteAddress === undefined;
    const peer = socket.remoteAddress === undefined ? undefined : addressBytes(socket.remoteAddress);
    if (unixPeer ? !this.#trustUnix : !peer || !proxyTrusted(this.#networks, peer)) {
      socket.on('error', () => {});
      socket.destroy();
      aborted(peer ? 'EPROXY_UNTRUSTED' : undefined);
      return;
    }
    const parser = new ProxyParser();
    const finish = (code: ProxyAbort | undefined, header?: ProxyHeader): void => {
      clearTimeout(timer);
      this.#waiting.delete(cancel);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      if (header) {
        socket.off('error', onError);
        ready(header);
        return;
      }
      socket.destroy();
      aborted(code);
    };
    const onData = (chunk: Buffer): void => {
      const result = parser.feed(chunk);
      if (result.status === 'need-more') return;
      if (result.status === 'error') return finish('EPROXY_HEADER');
      finish(undefined, {
        remoteAddress: parser.hasAddress ? parser.sourceAddress : (socket.remoteAddress ?? ''),
        remotePort: parser.hasAddress ? parser.sourcePort : (socket.remotePort ?? 0),
        tls: parser.tls ? connectionTls(parser.tls) : undefined,
        rest: result.consumed < chunk.length ? chunk.subarray(result.consumed) : undefined,
      });
    };
    // A FIN inside a header is a partial header (rejected); before any byte it is a TCP check.
    const onEnd = (): void => finish(parser.received === 0 ? undefined : 'EPROXY_HEADER');
    const onClose = (): void => finish(undefined);
    const onError = (): void => {};
    const cancel = (): void => finish(undefined);
    const timer = setTimeout(() => finish('EPROXY_TIMEOUT'), this.#timeout);
    timer.unref();
    this.#waiting.add(cancel);
    socket.on('error', onError);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
  }

  /** Drops every socket still waiting for its header (engine shutdown); not counted as aborts. */
  cancelAll(): void {
    for (const cancel of [...this.#waiting]) cancel();
  }
}
