/**
 * The PROXY protocol header parsers (docs/reliability.md T39, T40): src/proxy/header.ts
 * and native/proxy.cc (through the addon's proxyParse probe) over the spec's
 * valid forms split at every byte offset and followed by a frame, every
 * malformed case, and a seeded differential run over mutated headers.
 */
import { describe, expect, it } from 'vitest';
import { tryLoadNative } from '../../src/engines/native/binding';
import {
  addressBytes,
  connectionTls,
  crc32c,
  decodeProxyTls,
  parseProxyNetwork,
  proxyTrusted,
  ProxyParser,
  type ConnectionTls,
  type ProxyTlsFields,
} from '../../src/proxy/header';
import { frame } from '../helpers/wire';
import { inet4, inet6, SIGNATURE, ssl, v2 } from '../helpers/proxy-fixtures/headers';

interface Parsed {
  status: string;
  consumed: number;
  version: number;
  hasAddress: boolean;
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
  /** The TLS details byte for byte (hex), and as connection.tls shows them; null: none. */
  tls: TlsView | null;
}

interface TlsView {
  client: number;
  verify: number;
  strings: Record<string, string | undefined>;
  connection: ConnectionTls;
}

function tlsView(fields: ProxyTlsFields): TlsView {
  const hex = (bytes: Uint8Array | undefined): string | undefined => (bytes ? Buffer.from(bytes).toString('hex') : undefined);
  return {
    client: fields.client,
    verify: fields.verify,
    strings: { sni: hex(fields.sni), alpn: hex(fields.alpn), version: hex(fields.version), cipher: hex(fields.cipher), cn: hex(fields.cn) },
    connection: connectionTls(fields),
  };
}

interface ProxyProbe {
  proxyParse(chunks: Uint8Array[]): Omit<Parsed, 'tls'> & { tls: Buffer | null };
  proxyTrust(networks: string[], address: string): boolean | null;
}

const probe = tryLoadNative() as unknown as ProxyProbe | undefined;

function parseTs(chunks: Uint8Array[]): Parsed {
  const parser = new ProxyParser();
  let consumed = 0;
  for (const chunk of chunks) {
    const result = parser.feed(chunk);
    consumed += result.consumed;
    if (result.status !== 'need-more') break;
  }
  return {
    status: parser.status,
    consumed: parser.status === 'error' ? 0 : consumed,
    version: parser.version,
    hasAddress: parser.hasAddress,
    sourceAddress: parser.sourceAddress,
    sourcePort: parser.sourcePort,
    destinationAddress: parser.destinationAddress,
    destinationPort: parser.destinationPort,
    tls: parser.tls ? tlsView(parser.tls) : null,
  };
}

/** The native parser through the probe; its TLS details go through the OPEN record's encoding and decodeProxyTls, as in the engine. */
function parseNative(chunks: Uint8Array[]): Parsed {
  const result = probe!.proxyParse(chunks);
  if (result.tls === null) return { ...result, tls: null };
  const fields = decodeProxyTls(result.tls);
  if (!fields) throw new Error(`decodeProxyTls rejected the native encoding ${result.tls.toString('hex')}`);
  return { ...result, tls: tlsView(fields) };
}

const parsers: Array<[string, (chunks: Uint8Array[]) => Parsed]> = [['ts', parseTs]];
if (probe) parsers.push(['native', parseNative]);

const ascii = (text: string): Buffer => Buffer.from(text, 'latin1');

interface Valid {
  name: string;
  header: Buffer;
  version: number;
  source?: [string, number];
  destination?: [string, number];
  tls?: ConnectionTls;
}

const TLS13 = 'TLS_AES_256_GCM_SHA384';
const haproxyLike = [
  [0x01, ascii('edgepoll')],
  [0x02, ascii('gw.example.com')],
  [0x20, ssl(0x07, 0, [[0x21, 'TLSv1.3'], [0x22, 'device-42'], [0x23, TLS13], [0x24, 'RSA-SHA256'], [0x25, 'RSA2048']])],
] as Array<[number, Buffer]>;
const tlsOf = (fields: Partial<ConnectionTls> & { cert?: Partial<ConnectionTls['clientCertificate']> }): ConnectionTls => ({
  sni: fields.sni,
  alpn: fields.alpn,
  version: fields.version,
  cipher: fields.cipher,
  clientCertificate: { present: false, verified: false, cn: undefined, ...fields.cert },
});

const valid: Valid[] = [
  { name: 'v1 TCP4', header: ascii('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'), version: 1, source: ['192.168.0.1', 56324], destination: ['192.168.0.11', 443] },
  { name: 'v1 TCP4 extremes', header: ascii('PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n'), version: 1, source: ['0.0.0.0', 0], destination: ['255.255.255.255', 65535] },
  { name: 'v1 TCP6', header: ascii('PROXY TCP6 2001:DB8::1 2001:db8:0:0:0:0:0:2 4000 7000\r\n'), version: 1, source: ['2001:db8::1', 4000], destination: ['2001:db8::2', 7000] },
  { name: 'v1 TCP6 mapped', header: ascii('PROXY TCP6 ::ffff:10.1.2.3 ::1 1 2\r\n'), version: 1, source: ['::ffff:10.1.2.3', 1], destination: ['::1', 2] },
  { name: 'v1 UNKNOWN', header: ascii('PROXY UNKNOWN\r\n'), version: 1 },
  { name: 'v1 UNKNOWN with addresses', header: ascii('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n'), version: 1 },
  { name: 'v1 of exactly 107 bytes', header: ascii(`PROXY UNKNOWN ${'x'.repeat(91)}\r\n`), version: 1 },
  { name: 'v2 PROXY TCP4', header: v2(0x21, 0x11, inet4('10.0.0.7', '10.0.0.1', 40000, 7000)), version: 2, source: ['10.0.0.7', 40000], destination: ['10.0.0.1', 7000] },
  {
    name: 'v2 PROXY TCP4 with TLVs and CRC32C',
    header: v2(0x21, 0x11, inet4('203.0.113.9', '127.0.0.1', 1234, 80), [[0x01, ascii('h2')], [0x04, Buffer.alloc(5)], [0x05, ascii('id-1')]], true),
    version: 2,
    source: ['203.0.113.9', 1234],
    destination: ['127.0.0.1', 80],
  },
  {
    name: 'v2 PROXY TCP6 with CRC32C',
    header: v2(0x21, 0x21, inet6('2001:db8::5', 'fe80::1:0:0:1', 5555, 443), [[0x02, ascii('example.com')]], true),
    version: 2,
    source: ['2001:db8::5', 5555],
    destination: ['fe80::1:0:0:1', 443],
  },
  {
    name: 'v2 TLS: ALPN, AUTHORITY, SSL with version, CN, cipher, sig and key alg, CRC32C (send-proxy-v2-ssl-cn)',
    header: v2(0x21, 0x11, inet4('198.51.100.7', '127.0.0.1', 50000, 443), haproxyLike, true),
    version: 2,
    source: ['198.51.100.7', 50000],
    destination: ['127.0.0.1', 443],
    tls: tlsOf({ sni: 'gw.example.com', alpn: 'edgepoll', version: 'TLSv1.3', cipher: TLS13, cert: { present: true, verified: true, cn: 'device-42' } }),
  },
  {
    name: 'v2 TLS over TCP6, no client certificate, no ALPN or SNI',
    header: v2(0x21, 0x21, inet6('2001:db8::9', '::1', 1, 2), [[0x20, ssl(0x01, 0, [[0x21, 'TLSv1.2'], [0x23, 'ECDHE-RSA-AES128-GCM-SHA256']])]]),
    version: 2,
    source: ['2001:db8::9', 1],
    destination: ['::1', 2],
    tls: tlsOf({ version: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256' }),
  },
  {
    name: 'v2 TLS, certificate sent but not verified (verify 20, verify optional)',
    header: v2(0x21, 0x11, inet4('10.0.0.1', '10.0.0.2', 3, 4), [[0x20, ssl(0x03, 20, [[0x22, 'intruder']])]]),
    version: 2,
    source: ['10.0.0.1', 3],
    destination: ['10.0.0.2', 4],
    tls: tlsOf({ cert: { present: true, verified: false, cn: 'intruder' } }),
  },
  {
    name: 'v2 TLS, certificate from the resumed session only; repeated CN (the last counts), UTF-8, empty SNI',
    header: v2(0x21, 0x11, inet4('10.0.0.1', '10.0.0.2', 3, 4), [
      [0x02, Buffer.alloc(0)],
      [0x20, ssl(0x05, 0, [[0x22, 'first'], [0x26, Buffer.from([0xff, 0])], [0x22, 'Gerät-ü-✓']])],
    ]),
    version: 2,
    source: ['10.0.0.1', 3],
    destination: ['10.0.0.2', 4],
    tls: tlsOf({ sni: '', cert: { present: true, verified: true, cn: 'Gerät-ü-✓' } }),
  },
  {
    name: 'v2 SSL TLV saying the client did not use TLS (client 0): no tls, even with ALPN',
    header: v2(0x21, 0x11, inet4('10.0.0.1', '10.0.0.2', 3, 4), [[0x01, ascii('h2')], [0x20, ssl(0x00, 0)]]),
    version: 2,
    source: ['10.0.0.1', 3],
    destination: ['10.0.0.2', 4],
  },
  { name: 'v2 LOCAL', header: v2(0x20, 0x00, Buffer.alloc(0)), version: 2 },
  { name: 'v2 LOCAL with an SSL TLV (ignored: a health check)', header: v2(0x20, 0x11, Buffer.concat([inet4('1.2.3.4', '5.6.7.8', 1, 2), Buffer.from([0x20, 0, 5, 1, 0, 0, 0, 0])])), version: 2 },
  { name: 'v2 LOCAL with an address block', header: v2(0x20, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2)), version: 2 },
  { name: 'v2 PROXY UNSPEC', header: v2(0x21, 0x00, Buffer.alloc(3)), version: 2 },
  { name: 'v2 PROXY UNIX', header: v2(0x21, 0x31, Buffer.alloc(216)), version: 2 },
  { name: 'v2 PROXY UDP4', header: v2(0x21, 0x12, inet4('1.2.3.4', '5.6.7.8', 1, 2)), version: 2 },
];

const ping = frame(0, 0xff01, 1);

describe.each(parsers)('%s PROXY parser', (_name, parse) => {
  it.each(valid)('$name: split at every offset, then a frame in the same segment', ({ header, version, source, destination, tls }) => {
    const stream = Buffer.concat([header, ping]);
    for (let at = 0; at <= stream.length; at++) {
      const result = parse([stream.subarray(0, at), stream.subarray(at)]);
      expect(result.status, `split at ${at}`).toBe('done');
      expect(result.consumed, `split at ${at}`).toBe(header.length);
      expect(result.version).toBe(version);
      expect(result.hasAddress).toBe(source !== undefined);
      if (source) {
        expect([result.sourceAddress, result.sourcePort]).toEqual(source);
        expect([result.destinationAddress, result.destinationPort]).toEqual(destination);
      }
      expect(result.tls?.connection ?? null).toEqual(tls ?? null);
    }
    const bytewise = parse([...stream].map((byte) => Uint8Array.of(byte)));
    expect(bytewise.status).toBe('done');
    expect(bytewise.consumed).toBe(header.length);
  });

  it('needs more for every proper prefix of a valid header', () => {
    for (const { header } of valid) {
      for (let at = 0; at < header.length; at++) expect(parse([header.subarray(0, at)]).status).toBe('need-more');
    }
  });

  it('treats bytes past the v2 length as protocol data, not TLVs', () => {
    // A CRC32C TLV with a wrong checksum right after a TLV-less TCP4 header.
    const header = v2(0x21, 0x11, inet4('10.9.8.7', '127.0.0.1', 9, 10));
    const result = parse([Buffer.concat([header, Buffer.from([0x03, 0, 4, 1, 2, 3, 4]), ping])]);
    expect(result).toMatchObject({ status: 'done', consumed: 28, sourceAddress: '10.9.8.7' });
  });

  const good = inet4('1.2.3.4', '5.6.7.8', 1, 2);
  const tcp4 = v2(0x21, 0x11, good);
  const withCrc = v2(0x21, 0x11, good, [], true);
  const badCrc = Buffer.from(withCrc);
  badCrc[badCrc.length - 1] = badCrc[badCrc.length - 1]! ^ 1;
  const malformed: Array<[string, Buffer]> = [
    ['v1 with no CRLF in 107 bytes', ascii(`PROXY UNKNOWN ${'x'.repeat(93)}`)],
    ['v1 of 108 bytes', ascii(`PROXY UNKNOWN ${'x'.repeat(92)}\r\n`)],
    ['v1 with a lone \\n', ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')],
    ['v1 with a lone \\r', ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx\r\n')],
    ['v1 UNKNOWN with a lone \\r inside', ascii('PROXY UNKNOWN a\rb\r\n')],
    ['v1 leading zero in an octet', ascii('PROXY TCP4 010.0.0.1 10.0.0.2 1 2\r\n')],
    ['v1 octet above 255', ascii('PROXY TCP4 10.0.0.256 10.0.0.2 1 2\r\n')],
    ['v1 three octets', ascii('PROXY TCP4 10.0.1 10.0.0.2 1 2\r\n')],
    ['v1 port above 65535', ascii('PROXY TCP4 10.0.0.1 10.0.0.2 65536 2\r\n')],
    ['v1 port with a leading zero', ascii('PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n')],
    ['v1 negative port', ascii('PROXY TCP4 10.0.0.1 10.0.0.2 -1 2\r\n')],
    ['v1 double space', ascii('PROXY TCP4  10.0.0.1 10.0.0.2 1 2\r\n')],
    ['v1 missing port', ascii('PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n')],
    ['v1 extra field', ascii('PROXY TCP4 10.0.0.1 10.0.0.2 1 2 3\r\n')],
    ['v1 trailing space', ascii('PROXY TCP4 10.0.0.1 10.0.0.2 1 2 \r\n')],
    ['v1 IPv6 under TCP4', ascii('PROXY TCP4 ::1 ::1 1 2\r\n')],
    ['v1 IPv4 under TCP6', ascii('PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n')],
    ['v1 two :: in IPv6', ascii('PROXY TCP6 1::2::3 ::1 1 2\r\n')],
    ['v1 IPv6 with nine groups', ascii('PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n')],
    ['v1 IPv6 zone id', ascii('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n')],
    ['v1 lower-case protocol', ascii('PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 unknown protocol', ascii('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 UNKNOWNX', ascii('PROXY UNKNOWNX\r\n')],
    ['v1 empty', ascii('PROXY \r\n')],
    ['bad signature: HTTP', ascii('GET / HTTP/1.1\r\n\r\n')],
    ['bad signature: an edgepoll frame', ping],
    ['bad signature: "PROXY" without the space', ascii('PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['bad v2 signature', Buffer.concat([SIGNATURE.subarray(0, 11), Buffer.from([0x0b]), tcp4.subarray(12)])],
    ['v2 version nibble 1', Buffer.concat([tcp4.subarray(0, 12), Buffer.from([0x11]), tcp4.subarray(13)])],
    ['v2 version nibble 3', Buffer.concat([tcp4.subarray(0, 12), Buffer.from([0x31]), tcp4.subarray(13)])],
    ['v2 command 2', Buffer.concat([tcp4.subarray(0, 12), Buffer.from([0x22]), tcp4.subarray(13)])],
    ['v2 command 15', Buffer.concat([tcp4.subarray(0, 12), Buffer.from([0x2f]), tcp4.subarray(13)])],
    ['v2 unknown family', v2(0x21, 0x41, good)],
    ['v2 unknown transport', v2(0x21, 0x13, good)],
    ['v2 length below the IPv4 block', v2(0x21, 0x11, good.subarray(0, 11))],
    ['v2 length below the IPv6 block', v2(0x21, 0x21, Buffer.alloc(35))],
    ['v2 length below the UNIX block', v2(0x21, 0x31, Buffer.alloc(215))],
    ['v2 TLV overrunning the header', v2(0x21, 0x11, Buffer.concat([good, Buffer.from([0x01, 0, 9, 1, 2])]))],
    ['v2 truncated TLV header', v2(0x21, 0x11, Buffer.concat([good, Buffer.from([0x01, 0])]))],
    ['v2 CRC32C mismatch', badCrc],
    ['v2 CRC32C of 3 bytes', v2(0x21, 0x11, good, [[0x03, Buffer.alloc(3)]])],
    ['v2 two CRC32C TLVs', v2(0x21, 0x11, good, [[0x03, Buffer.alloc(4)]], true)],
    ['v2 SSL TLV of 4 bytes', v2(0x21, 0x11, good, [[0x20, Buffer.from([1, 0, 0, 0])]])],
    ['v2 SSL TLV of 0 bytes', v2(0x21, 0x11, good, [[0x20, Buffer.alloc(0)]])],
    ['v2 SSL sub-TLV overrunning the SSL TLV', v2(0x21, 0x11, good, [[0x20, Buffer.concat([ssl(1, 0), Buffer.from([0x22, 0, 9, 0x41])])]])],
    ['v2 SSL truncated sub-TLV header', v2(0x21, 0x11, good, [[0x20, Buffer.concat([ssl(1, 0, [[0x21, 'TLSv1.3']]), Buffer.from([0x22, 0])])]])],
    ['v2 SSL sub-TLV overrun with client 0 (not TLS)', v2(0x21, 0x11, good, [[0x20, Buffer.concat([ssl(0, 0), Buffer.from([0x21, 1, 0])])]])],
    ['v2 SSL TLV fine but CRC32C mismatch', (() => {
      const header = v2(0x21, 0x11, good, [[0x20, ssl(7, 0, [[0x22, 'device']])]], true);
      header[header.length - 1]! ^= 1;
      return header;
    })()],
  ];

  it.each(malformed)('rejects %s, however it is split, even with a frame after it', (_case, header) => {
    const stream = Buffer.concat([header, ping]);
    for (let at = 0; at <= stream.length; at++) {
      expect(parse([stream.subarray(0, at), stream.subarray(at)]).status, `split at ${at}`).toBe('error');
    }
  });

  it('rejects a bad fixed v2 part at once, without waiting for the announced length', () => {
    const header = Buffer.concat([SIGNATURE, Buffer.from([0x12, 0x11, 0xff, 0xff])]);
    expect(parse([header]).status).toBe('error');
    expect(parse([ascii('X')]).status).toBe('error');
  });

  it('waits for a v2 length beyond the data (the engine aborts on FIN or timeout)', () => {
    const header = v2(0x21, 0x11, good);
    header.writeUInt16BE(500, 14);
    expect(parse([header]).status).toBe('need-more');
  });
});

describe('CRC32C and trusted networks', () => {
  it('computes the CRC32C check value', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
  });

  const trustCases: Array<[string[], string, boolean]> = [
    [['127.0.0.1/8'], '127.5.6.7', true],
    [['127.0.0.1/8'], '128.0.0.1', false],
    [['127.0.0.1/8'], '::ffff:127.0.0.1', true],
    [['::1'], '::1', true],
    [['::1'], '127.0.0.1', false],
    [['10.0.0.0/0'], '192.168.1.1', true],
    [['10.0.0.0/0'], '::2', false],
    [['2001:db8::/32'], '2001:db8:ffff::1', true],
    [['2001:db8::/33'], '2001:db8:8000::1', false],
    [['192.168.1.128/25'], '192.168.1.200', true],
    [['192.168.1.128/25'], '192.168.1.100', false],
    [['::/0'], '1.2.3.4', true],
  ];

  it.each(trustCases)('trust %j for %s is %s (TS and native)', (networks, address, expected) => {
    const parsed = networks.map((network) => parseProxyNetwork(network)!);
    expect(proxyTrusted(parsed, addressBytes(address)!)).toBe(expected);
    if (probe) expect(probe.proxyTrust(networks, address)).toBe(expected);
  });

  it.each(['', '1.2.3', '1.2.3.4/33', '::1/129', '01.2.3.4', '1.2.3.4/', '1.2.3.4/08', 'localhost', '::1/x'])(
    'rejects the network %j',
    (network) => {
      expect(parseProxyNetwork(network)).toBeUndefined();
      if (probe) expect(probe.proxyTrust([network], '1.2.3.4')).toBeNull();
    },
  );
});

/** mulberry32 */
function randomFrom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

describe.skipIf(!probe)('native vs TS PROXY parser', () => {
  it('agree on mutated headers at random splits', () => {
    const seed = Date.now() >>> 0;
    const random = randomFrom(seed);
    const alphabet = ascii('0123456789abcdefABCDEF.: \r\nPROXYTCP46UNKW/%');
    for (let round = 0; round < 3000; round++) {
      const base = valid[Math.floor(random() * valid.length)]!.header;
      const bytes = Buffer.concat([base, ping]);
      const mutations = Math.floor(random() * 4);
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(random() * bytes.length);
        bytes[at] = random() < 0.5 ? alphabet[Math.floor(random() * alphabet.length)]! : Math.floor(random() * 256);
      }
      const cut = Math.floor(random() * (bytes.length + 1));
      const chunks = [bytes.subarray(0, cut), bytes.subarray(cut)];
      const tsResult = parseTs(chunks);
      const nativeResult = parseNative(chunks);
      expect(nativeResult, `seed ${seed} round ${round}: ${bytes.toString('hex')}`).toEqual(tsResult);
    }
  });
});
