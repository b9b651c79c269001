// The PROXY protocol header parser (v1 text and v2 binary, HAProxy's
// doc/proxy-protocol.txt) and the trusted-source check.
// Owns: the bytes of one connection's header while it arrives (at most 107
// for v1, 16 + 65535 for v2), and the addresses and TLS details (SSL,
// AUTHORITY, ALPN TLVs) it carried.
// Does not own: the socket, timing (Sweeper::sweep enforces the header timeout)
// or the decision to abort (Loop). No syscalls, no Node-API: pure bytes in,
// result out, so the fuzzer and the test probe drive it directly.
// Runs on: the loop thread that owns the connection (or the fuzzer / JS thread).
// src/proxy/header.ts is the same parser in TypeScript; test/proxy/proxy.test.ts checks
// that both agree.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace edgepoll {

enum class ProxyStatus : uint8_t {
  NeedMore,  // every byte so far is a valid header prefix
  Done,      // a complete, valid header
  Error,     // not a valid header (sticky)
};

// What a v2 header said about the client's TLS connection to the proxy: the
// SSL TLV (client byte, verify field, version / CN / cipher sub-TLVs) and the
// AUTHORITY (SNI) and ALPN TLVs, as raw bytes (JS decodes them as UTF-8).
// Set only when the SSL TLV's PP2_CLIENT_SSL bit is on.
struct ProxyTls {
  // The bits of `present`, one per string below; also the order appendProxyTls writes them in.
  enum : uint8_t { kSni = 1, kAlpn = 2, kVersion = 4, kCipher = 8, kCn = 16 };
  uint8_t client = 0;
  uint32_t verify = 0;
  uint8_t present = 0;
  std::string sni, alpn, version, cipher, cn;
};

// Appends `tls` to `out` in the OPEN record's slab layout (docs/internals.md
// "Batches"): client u8, verify u32 LE, present u8, then each present string
// as u16 LE length + bytes in the order of the bits.
void appendProxyTls(const ProxyTls& tls, std::string* out);

struct ProxyResult {
  ProxyStatus status;
  // Bytes of this feed that belonged to the header. On Done, the bytes after
  // them are protocol data; on NeedMore it is the whole feed.
  size_t consumed;
};

class ProxyParser {
 public:
  static constexpr size_t kV1MaxLength = 107;  // including CRLF (spec §2.1)
  static constexpr size_t kV2HeaderLength = 16;

  ProxyResult feed(const uint8_t* data, size_t length);
  ProxyStatus status() const { return status_; }
  // Header bytes taken so far (0: the peer sent nothing yet).
  size_t received() const { return received_; }
  // 1 or 2 once the signature told, else 0.
  int version() const { return version_; }
  // Done: true when the header named the client (v1 TCP4/TCP6, v2 PROXY over
  // INET/INET6). false for v2 LOCAL, v1 UNKNOWN, v2 UNSPEC/UNIX: use the real peer.
  bool hasAddress() const { return hasAddress_; }
  const std::string& sourceAddress() const { return source_; }
  uint16_t sourcePort() const { return sourcePort_; }
  const std::string& destinationAddress() const { return destination_; }
  uint16_t destinationPort() const { return destinationPort_; }
  // Done: the client's TLS details, or nullptr (no SSL TLV, not over TLS, v1).
  const ProxyTls* tls() const { return hasTls_ ? &tls_ : nullptr; }

 private:
  bool takeSignature(uint8_t byte);
  ProxyResult feedV1(const uint8_t* data, size_t length, size_t at);
  ProxyResult feedV2(const uint8_t* data, size_t length, size_t at);
  bool finishV1();
  bool checkV2Fixed();
  bool finishV2();
  ProxyResult fail();

  ProxyStatus status_ = ProxyStatus::NeedMore;
  int version_ = 0;
  size_t received_ = 0;
  size_t expected_ = 0;  // v2: 16 + len once the fixed part arrived
  std::vector<uint8_t> buffer_;
  bool hasAddress_ = false;
  std::string source_, destination_;
  uint16_t sourcePort_ = 0, destinationPort_ = 0;
  bool hasTls_ = false;
  ProxyTls tls_;
};

// One trusted network: IPv4 is kept as an IPv4-mapped IPv6 address (prefix + 96),
// so a peer seen on a dual-stack listener as ::ffff:a.b.c.d matches it.
struct ProxyNetwork {
  uint8_t bytes[16];
  uint8_t prefix;
};

// "a.b.c.d", "a.b.c.d/n", IPv6 "x::y", "x::y/n". false when malformed.
bool parseProxyNetwork(const std::string& text, ProxyNetwork* network);
// `address` is 16 bytes (IPv6, or IPv4-mapped).
bool proxyTrusted(const std::vector<ProxyNetwork>& networks, const uint8_t* address);

// Strict textual addresses, shared by the header and the trusted list.
// IPv4: four decimal octets, no leading zeros. IPv6: RFC 4291 §2.2 forms.
bool parseIpv4(const char* text, size_t length, uint8_t out[4]);
bool parseIpv6(const char* text, size_t length, uint8_t out[16]);
// Node's spelling: RFC 5952 (lower case, longest zero run as ::), and
// ::ffff:a.b.c.d for IPv4-mapped addresses (what node:net reports).
std::string formatIpv4(const uint8_t* bytes);
std::string formatIpv6(const uint8_t* bytes);

// CRC32C (Castagnoli), as the v2 PP2_TYPE_CRC32C TLV carries it.
uint32_t crc32c(const uint8_t* data, size_t length, uint32_t crc = 0);

}  // namespace edgepoll
