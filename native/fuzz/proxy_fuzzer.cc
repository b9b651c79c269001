// libFuzzer target: the PROXY protocol header parser (native/proxy.cc,
// RELIABILITY.md T39/T40). Byte 0 picks the split point; the rest is the
// stream. Feeding it whole, in two parts and a byte at a time must give the
// same status, the same header length, the same addresses and TLS details; an error is
// sticky; a v1 header never exceeds 107 bytes.
// Built only by scripts/fuzz.sh, never into the addon. Runs on: the fuzzer's thread.
#include <cstdio>
#include <vector>

#include "../proxy.h"

#define PROXY_CHECK(condition)                                                            \
  do {                                                                                    \
    if (!(condition)) {                                                                   \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      __builtin_trap();                                                                   \
    }                                                                                     \
  } while (0)

namespace {

using edgepoll::ProxyParser;
using edgepoll::ProxyResult;
using edgepoll::ProxyStatus;

struct Outcome {
  ProxyStatus status;
  size_t consumed;
};

// Feeds the parts in order (each copied, so ASan sees its true bounds) until
// the parser decides; returns the status and the header length.
Outcome run(ProxyParser& parser, const std::vector<std::vector<uint8_t>>& parts) {
  size_t consumed = 0;
  for (const auto& part : parts) {
    ProxyResult result = parser.feed(part.data(), part.size());
    PROXY_CHECK(result.consumed <= part.size());
    if (result.status == ProxyStatus::NeedMore) PROXY_CHECK(result.consumed == part.size());
    consumed += result.consumed;
    if (result.status != ProxyStatus::NeedMore) return {result.status, result.status == ProxyStatus::Done ? consumed : 0};
  }
  return {parser.status(), 0};
}

bool sameTls(const ProxyParser& a, const ProxyParser& b) {
  if ((a.tls() == nullptr) != (b.tls() == nullptr)) return false;
  if (a.tls() == nullptr) return true;
  std::string x, y;
  edgepoll::appendProxyTls(*a.tls(), &x);
  edgepoll::appendProxyTls(*b.tls(), &y);
  return x == y;
}

bool sameAddresses(const ProxyParser& a, const ProxyParser& b) {
  return a.hasAddress() == b.hasAddress() && a.sourceAddress() == b.sourceAddress() && a.sourcePort() == b.sourcePort() &&
         a.destinationAddress() == b.destinationAddress() && a.destinationPort() == b.destinationPort() && sameTls(a, b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t* stream = data + 1;
  const size_t length = size - 1;
  const size_t at = length * data[0] / 255;

  ProxyParser whole;
  Outcome reference = run(whole, {std::vector<uint8_t>(stream, stream + length)});

  ProxyParser split;
  Outcome two = run(split, {std::vector<uint8_t>(stream, stream + at), std::vector<uint8_t>(stream + at, stream + length)});
  PROXY_CHECK(two.status == reference.status && two.consumed == reference.consumed);
  PROXY_CHECK(sameAddresses(whole, split));

  std::vector<std::vector<uint8_t>> bytes;
  for (size_t i = 0; i < length; i++) bytes.push_back({stream[i]});
  ProxyParser bytewise;
  Outcome single = run(bytewise, bytes);
  PROXY_CHECK(single.status == reference.status && single.consumed == reference.consumed);
  PROXY_CHECK(sameAddresses(whole, bytewise));

  if (reference.status == ProxyStatus::Done) {
    PROXY_CHECK(whole.version() == 1 || whole.version() == 2);
    if (whole.version() == 1) PROXY_CHECK(reference.consumed <= ProxyParser::kV1MaxLength);
    if (whole.hasAddress()) PROXY_CHECK(!whole.sourceAddress().empty() && !whole.destinationAddress().empty());
    if (whole.tls() != nullptr) PROXY_CHECK(whole.version() == 2 && (whole.tls()->client & 1) != 0);
  } else {
    PROXY_CHECK(!whole.hasAddress() && whole.tls() == nullptr);
  }
  // A decided parser takes nothing more.
  if (reference.status != ProxyStatus::NeedMore) {
    ProxyResult again = whole.feed(stream, length);
    PROXY_CHECK(again.status == reference.status && again.consumed == 0);
  }
  return 0;
}
