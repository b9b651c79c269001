// The PROXY protocol header parser and address helpers (see proxy.h).
// Pure functions of bytes: any thread, no syscalls.
#include "proxy.h"

#include <cstring>

namespace edgepoll {

namespace {

const uint8_t kV1Signature[] = {'P', 'R', 'O', 'X', 'Y', ' '};
const uint8_t kV2Signature[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

enum : uint8_t { kFamilyUnspec = 0, kFamilyInet = 1, kFamilyInet6 = 2, kFamilyUnix = 3 };
enum : uint8_t { kTransportUnspec = 0, kTransportStream = 1, kTransportDgram = 2 };
enum : uint8_t { kTlvAlpn = 0x01, kTlvAuthority = 0x02, kTlvCrc32c = 0x03, kTlvSsl = 0x20 };
enum : uint8_t { kSubTlvSslVersion = 0x21, kSubTlvSslCn = 0x22, kSubTlvSslCipher = 0x23 };
constexpr uint8_t kClientSsl = 0x01;  // PP2_CLIENT_SSL

uint16_t be16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

// Address block sizes of v2 (spec §2.2): two addresses and two ports.
size_t addressBlock(uint8_t family) {
  switch (family) {
    case kFamilyInet: return 12;
    case kFamilyInet6: return 36;
    case kFamilyUnix: return 216;
    default: return 0;
  }
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decimal without leading zeros ("0" itself is fine), at most `maxDigits`.
bool parseDecimal(const char* text, size_t length, size_t maxDigits, uint32_t max, uint32_t* out) {
  if (length == 0 || length > maxDigits) return false;
  if (length > 1 && text[0] == '0') return false;
  uint32_t value = 0;
  for (size_t i = 0; i < length; i++) {
    if (!isDigit(text[i])) return false;
    value = value * 10 + uint32_t(text[i] - '0');
  }
  if (value > max) return false;
  *out = value;
  return true;
}

// Colon-separated hex groups of one side of "::"; an IPv4 tail counts as two.
bool parseGroups(const char* text, size_t length, bool allowIpv4, uint16_t* words, size_t* count) {
  *count = 0;
  if (length == 0) return true;
  size_t start = 0;
  for (;;) {
    size_t end = start;
    while (end < length && text[end] != ':') end++;
    const char* group = text + start;
    size_t size = end - start;
    if (size == 0) return false;
    if (std::memchr(group, '.', size) != nullptr) {
      // Dotted IPv4 only as the very last group.
      uint8_t v4[4];
      if (!allowIpv4 || end != length || *count > 6 || !parseIpv4(group, size, v4)) return false;
      words[(*count)++] = uint16_t((v4[0] << 8) | v4[1]);
      words[(*count)++] = uint16_t((v4[2] << 8) | v4[3]);
      return true;
    }
    if (size > 4 || *count >= 8) return false;
    uint32_t value = 0;
    for (size_t i = 0; i < size; i++) {
      int digit = hexValue(group[i]);
      if (digit < 0) return false;
      value = value * 16 + uint32_t(digit);
    }
    words[(*count)++] = uint16_t(value);
    if (end == length) return true;
    start = end + 1;
    if (start == length) return false;  // trailing ':'
  }
}

bool parsePort(const std::string& text, uint16_t* port) {
  uint32_t value;
  if (!parseDecimal(text.data(), text.size(), 5, 65535, &value)) return false;
  *port = uint16_t(value);
  return true;
}

// The SSL TLV's value: client (u8), verify (u32 BE), then sub-TLVs that fill
// it exactly (version, CN, cipher kept; others skipped; the last of a repeated
// one counts). false when malformed. src/proxy/header.ts parseSslTlv, rule for rule.
bool parseSslTlv(const uint8_t* value, size_t size, ProxyTls* tls) {
  if (size < 5) return false;
  tls->client = value[0];
  tls->verify = be32(value + 1);
  size_t at = 5;
  while (at < size) {
    if (size - at < 3) return false;
    uint8_t type = value[at];
    size_t length = be16(value + at + 1);
    if (size - at - 3 < length) return false;
    const char* bytes = reinterpret_cast<const char*>(value + at + 3);
    if (type == kSubTlvSslVersion) tls->version.assign(bytes, length), tls->present |= ProxyTls::kVersion;
    else if (type == kSubTlvSslCn) tls->cn.assign(bytes, length), tls->present |= ProxyTls::kCn;
    else if (type == kSubTlvSslCipher) tls->cipher.assign(bytes, length), tls->present |= ProxyTls::kCipher;
    at += 3 + length;
  }
  return true;
}

void appendLE16(std::string* out, size_t value) {
  out->push_back(char(value & 0xFF));
  out->push_back(char((value >> 8) & 0xFF));
}

}  // namespace

void appendProxyTls(const ProxyTls& tls, std::string* out) {
  out->push_back(char(tls.client));
  for (int shift = 0; shift < 32; shift += 8) out->push_back(char((tls.verify >> shift) & 0xFF));
  out->push_back(char(tls.present));
  // Each string is a TLV's value inside a header of at most 65535 bytes: it fits a u16.
  const std::string* strings[] = {&tls.sni, &tls.alpn, &tls.version, &tls.cipher, &tls.cn};
  for (int i = 0; i < 5; i++) {
    if (!(tls.present & (1 << i))) continue;
    appendLE16(out, strings[i]->size());
    out->append(*strings[i]);
  }
}

bool parseIpv4(const char* text, size_t length, uint8_t out[4]) {
  size_t start = 0;
  for (int part = 0; part < 4; part++) {
    size_t end = start;
    while (end < length && text[end] != '.') end++;
    if ((part < 3) != (end < length)) return false;  // exactly three dots
    uint32_t value;
    if (!parseDecimal(text + start, end - start, 3, 255, &value)) return false;
    out[part] = uint8_t(value);
    start = end + 1;
  }
  return true;
}

bool parseIpv6(const char* text, size_t length, uint8_t out[16]) {
  if (length < 2 || length > 45) return false;
  uint16_t head[8], tail[8];
  size_t headCount = 0, tailCount = 0;
  const char* gap = nullptr;
  for (size_t i = 0; i + 1 < length; i++) {
    if (text[i] == ':' && text[i + 1] == ':') {
      gap = text + i;
      break;
    }
  }
  if (gap == nullptr) {
    if (!parseGroups(text, length, true, head, &headCount) || headCount != 8) return false;
  } else {
    size_t headLength = size_t(gap - text);
    if (!parseGroups(text, headLength, false, head, &headCount)) return false;
    if (!parseGroups(gap + 2, length - headLength - 2, true, tail, &tailCount)) return false;
    if (headCount + tailCount > 7) return false;  // "::" stands for at least one group
  }
  uint16_t words[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < headCount; i++) words[i] = head[i];
  for (size_t i = 0; i < tailCount; i++) words[8 - tailCount + i] = tail[i];
  for (int i = 0; i < 8; i++) {
    out[2 * i] = uint8_t(words[i] >> 8);
    out[2 * i + 1] = uint8_t(words[i]);
  }
  return true;
}

std::string formatIpv4(const uint8_t* bytes) {
  std::string text;
  for (int i = 0; i < 4; i++) {
    if (i) text += '.';
    text += std::to_string(bytes[i]);
  }
  return text;
}

std::string formatIpv6(const uint8_t* bytes) {
  uint16_t words[8];
  for (int i = 0; i < 8; i++) words[i] = uint16_t((bytes[2 * i] << 8) | bytes[2 * i + 1]);
  bool mapped = words[5] == 0xFFFF;
  for (int i = 0; i < 5; i++) mapped = mapped && words[i] == 0;
  if (mapped) return "::ffff:" + formatIpv4(bytes + 12);
  // RFC 5952 §4.2: the longest run of two or more zero groups (the first on a tie).
  int bestStart = -1, bestLength = 0;
  for (int i = 0; i < 8;) {
    if (words[i] != 0) {
      i++;
      continue;
    }
    int j = i;
    while (j < 8 && words[j] == 0) j++;
    if (j - i > bestLength && j - i >= 2) bestStart = i, bestLength = j - i;
    i = j;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string text;
  for (int i = 0; i < 8; i++) {
    if (i == bestStart) {
      text += "::";
      i += bestLength - 1;
      continue;
    }
    if (!text.empty() && text.back() != ':') text += ':';
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      int digit = (words[i] >> shift) & 0xF;
      if (digit || started || shift == 0) text += kHex[digit], started = true;
    }
  }
  return text;
}

uint32_t crc32c(const uint8_t* data, size_t length, uint32_t crc) {
  static uint32_t table[256];
  static bool ready = [] {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)ready;
  crc = ~crc;
  for (size_t i = 0; i < length; i++) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

bool parseProxyNetwork(const std::string& text, ProxyNetwork* network) {
  size_t slash = text.find('/');
  std::string address = text.substr(0, slash);
  bool v6 = address.find(':') != std::string::npos;
  uint32_t maxPrefix = v6 ? 128 : 32;
  uint32_t prefix = maxPrefix;
  if (slash != std::string::npos && !parseDecimal(text.data() + slash + 1, text.size() - slash - 1, 3, maxPrefix, &prefix)) {
    return false;
  }
  std::memset(network->bytes, 0, 16);
  if (v6) {
    if (!parseIpv6(address.data(), address.size(), network->bytes)) return false;
    network->prefix = uint8_t(prefix);
    return true;
  }
  if (!parseIpv4(address.data(), address.size(), network->bytes + 12)) return false;
  network->bytes[10] = network->bytes[11] = 0xFF;
  network->prefix = uint8_t(prefix + 96);
  return true;
}

bool proxyTrusted(const std::vector<ProxyNetwork>& networks, const uint8_t* address) {
  for (const ProxyNetwork& network : networks) {
    size_t whole = network.prefix / 8;
    int rest = network.prefix % 8;
    if (std::memcmp(network.bytes, address, whole) != 0) continue;
    if (rest != 0) {
      uint8_t mask = uint8_t(0xFF << (8 - rest));
      if ((network.bytes[whole] & mask) != (address[whole] & mask)) continue;
    }
    return true;
  }
  return false;
}

ProxyResult ProxyParser::fail() {
  status_ = ProxyStatus::Error;
  std::vector<uint8_t>().swap(buffer_);
  return {status_, 0};
}

bool ProxyParser::takeSignature(uint8_t byte) {
  buffer_.push_back(byte);
  received_++;
  bool v1 = buffer_[0] == kV1Signature[0];
  const uint8_t* signature = v1 ? kV1Signature : kV2Signature;
  size_t length = v1 ? sizeof kV1Signature : sizeof kV2Signature;
  if (byte != signature[received_ - 1]) return false;
  if (received_ == length) version_ = v1 ? 1 : 2;
  return true;
}

ProxyResult ProxyParser::feed(const uint8_t* data, size_t length) {
  if (status_ != ProxyStatus::NeedMore) return {status_, 0};
  size_t at = 0;
  while (version_ == 0 && at < length) {
    if (!takeSignature(data[at++])) return fail();
  }
  if (version_ == 1) return feedV1(data, length, at);
  if (version_ == 2) return feedV2(data, length, at);
  return {status_, length};
}

ProxyResult ProxyParser::feedV1(const uint8_t* data, size_t length, size_t at) {
  for (; at < length; at++) {
    uint8_t byte = data[at];
    uint8_t previous = buffer_.back();
    // The spec forbids tolerating a lone CR or LF.
    if (previous == '\r' && byte != '\n') return fail();
    if (byte == '\n' && previous != '\r') return fail();
    buffer_.push_back(byte);
    received_++;
    if (byte == '\n') {
      if (!finishV1()) return fail();
      status_ = ProxyStatus::Done;
      std::vector<uint8_t>().swap(buffer_);
      return {status_, at + 1};
    }
    if (buffer_.size() >= kV1MaxLength) return fail();  // no CRLF within 107 bytes
  }
  return {status_, length};
}

bool ProxyParser::finishV1() {
  // buffer_ = "PROXY " ... "\r\n"
  std::string line(buffer_.begin() + sizeof kV1Signature, buffer_.end() - 2);
  if (line.compare(0, 7, "UNKNOWN") == 0 && (line.size() == 7 || line[7] == ' ')) return true;  // the rest is ignored
  bool v4 = line.compare(0, 5, "TCP4 ") == 0;
  bool v6 = line.compare(0, 5, "TCP6 ") == 0;
  if (!v4 && !v6) return false;
  std::string fields[4];
  size_t start = 5;
  for (int i = 0; i < 4; i++) {
    size_t end = line.find(' ', start);
    if ((i < 3) != (end != std::string::npos)) return false;  // exactly four single-space separated fields
    if (end == std::string::npos) end = line.size();
    fields[i] = line.substr(start, end - start);
    start = end + 1;
  }
  uint8_t source[16], destination[16];
  auto parse = v4 ? parseIpv4 : parseIpv6;
  if (!parse(fields[0].data(), fields[0].size(), source)) return false;
  if (!parse(fields[1].data(), fields[1].size(), destination)) return false;
  uint16_t sourcePort, destinationPort;
  if (!parsePort(fields[2], &sourcePort) || !parsePort(fields[3], &destinationPort)) return false;
  // Only a valid header names anyone.
  source_ = v4 ? formatIpv4(source) : formatIpv6(source);
  destination_ = v4 ? formatIpv4(destination) : formatIpv6(destination);
  sourcePort_ = sourcePort;
  destinationPort_ = destinationPort;
  hasAddress_ = true;
  return true;
}

ProxyResult ProxyParser::feedV2(const uint8_t* data, size_t length, size_t at) {
  while (received_ < kV2HeaderLength && at < length) {
    buffer_.push_back(data[at++]);
    received_++;
    if (received_ == kV2HeaderLength) {
      if (!checkV2Fixed()) return fail();  // fail early: do not wait for a bad header's body
      expected_ = kV2HeaderLength + be16(buffer_.data() + 14);
      buffer_.reserve(expected_);
    }
  }
  if (received_ < kV2HeaderLength) return {status_, length};
  size_t take = expected_ - received_;
  if (take > length - at) take = length - at;
  buffer_.insert(buffer_.end(), data + at, data + at + take);
  received_ += take;
  at += take;
  if (received_ < expected_) return {status_, length};
  if (!finishV2()) return fail();
  status_ = ProxyStatus::Done;
  std::vector<uint8_t>().swap(buffer_);
  return {status_, at};
}

bool ProxyParser::checkV2Fixed() {
  uint8_t versionCommand = buffer_[12];
  if ((versionCommand >> 4) != 2) return false;
  uint8_t command = versionCommand & 0x0F;
  if (command > 1) return false;
  if (command == 0) return true;  // LOCAL: the family is ignored
  uint8_t family = buffer_[13] >> 4;
  uint8_t transport = buffer_[13] & 0x0F;
  if (family > kFamilyUnix || transport > kTransportDgram) return false;
  return be16(buffer_.data() + 14) >= addressBlock(family);
}

bool ProxyParser::finishV2() {
  if ((buffer_[12] & 0x0F) == 0) return true;  // LOCAL: a health check; the real peer
  uint8_t family = buffer_[13] >> 4;
  uint8_t transport = buffer_[13] & 0x0F;
  if (family == kFamilyUnspec) return true;  // unknown protocol: the real peer
  // TLVs fill the rest exactly; a TLV that overruns the header is malformed.
  size_t at = kV2HeaderLength + addressBlock(family);
  size_t crcAt = 0;
  // Offsets (0: absent) of the value of the last ALPN, AUTHORITY and SSL TLV, and their sizes.
  size_t sslAt = 0, sslSize = 0, alpnAt = 0, alpnSize = 0, authorityAt = 0, authoritySize = 0;
  while (at < expected_) {
    if (expected_ - at < 3) return false;
    uint8_t type = buffer_[at];
    size_t size = be16(buffer_.data() + at + 1);
    if (expected_ - at - 3 < size) return false;
    if (type == kTlvCrc32c) {
      if (size != 4 || crcAt != 0) return false;
      crcAt = at + 3;
    } else if (type == kTlvSsl) {
      sslAt = at + 3, sslSize = size;
    } else if (type == kTlvAlpn) {
      alpnAt = at + 3, alpnSize = size;
    } else if (type == kTlvAuthority) {
      authorityAt = at + 3, authoritySize = size;
    }
    at += 3 + size;
  }
  if (crcAt != 0) {
    uint32_t carried = be32(buffer_.data() + crcAt);
    std::memset(buffer_.data() + crcAt, 0, 4);
    if (crc32c(buffer_.data(), expected_) != carried) return false;
  }
  if (sslAt != 0) {
    ProxyTls tls;
    if (!parseSslTlv(buffer_.data() + sslAt, sslSize, &tls)) return false;
    if (tls.client & kClientSsl) {
      const char* bytes = reinterpret_cast<const char*>(buffer_.data());
      if (alpnAt != 0) tls.alpn.assign(bytes + alpnAt, alpnSize), tls.present |= ProxyTls::kAlpn;
      if (authorityAt != 0) tls.sni.assign(bytes + authorityAt, authoritySize), tls.present |= ProxyTls::kSni;
      tls_ = std::move(tls);
      hasTls_ = true;
    }
  }
  if (transport != kTransportStream) return true;  // DGRAM/UNSPEC over a TCP listener: the real peer
  const uint8_t* block = buffer_.data() + kV2HeaderLength;
  if (family == kFamilyInet) {
    source_ = formatIpv4(block);
    destination_ = formatIpv4(block + 4);
    sourcePort_ = be16(block + 8);
    destinationPort_ = be16(block + 10);
    hasAddress_ = true;
  } else if (family == kFamilyInet6) {
    source_ = formatIpv6(block);
    destination_ = formatIpv6(block + 16);
    sourcePort_ = be16(block + 32);
    destinationPort_ = be16(block + 34);
    hasAddress_ = true;
  }
  return true;  // UNIX: the real peer
}

}  // namespace edgepoll
