// Shared body of the libFuzzer targets for the decoders (docs/reliability.md T13).
// Owns: the checks a fuzz input must pass. Does not own: the Decoder
// (../codec.cc). Runs on: the fuzzer's thread; never compiled into the addon
// (binding.gyp takes only native/*.cc and native/loadgen/*.cc).
//
// Input layout: byte 0 picks role (bit 0) and maxFrame (bits 1-2); byte 1
// picks the split point; the rest is the byte stream. The stream is fed in two
// parts and checked against feeding it whole: same messages, same error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "../codec.h"

namespace edgepoll {
namespace fuzz {

constexpr uint32_t kMaxFrames[4] = {300, 64, 1, 1024 * 1024};

#define FUZZ_CHECK(condition)                                                  \
  do {                                                                         \
    if (!(condition)) {                                                        \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      __builtin_trap();                                                        \
    }                                                                          \
  } while (0)

// Records what was delivered (a digest per message) and checks each message.
class CheckingSink : public MessageSink {
 public:
  CheckingSink(Framing framing, uint32_t maxFrame, Role role) : framing_(framing), maxFrame_(maxFrame), role_(role) {}

  bool onMessage(const Message& message) override {
    FUZZ_CHECK(!stopped_);  // nothing may arrive after an error
    if (framing_ != Framing::Raw) FUZZ_CHECK(message.length <= maxFrame_);
    FUZZ_CHECK(message.length == 0 || message.data != nullptr);
    uint64_t digest = 1469598103934665603ull;
    for (uint32_t i = 0; i < message.length; i++) digest = (digest ^ message.data[i]) * 1099511628211ull;  // reads every byte (ASan)
    if (framing_ == Framing::Frame) {
      FUZZ_CHECK((message.flags & kReservedFlags) == 0);
      FUZZ_CHECK(message.type != 0);
      FUZZ_CHECK(message.type < kControlFirst || (message.type >= kTypePing && message.type <= kTypeGoaway));
      FUZZ_CHECK(!(message.type == kTypeGoaway && role_ == Role::Server));
      FUZZ_CHECK(message.type != kTypePing || message.length <= kMaxPingPayload);
    } else {
      FUZZ_CHECK(message.type == 0 && message.flags == 0 && message.seq == 0);
    }
    digests_.push_back(digest ^ (uint64_t(message.type) << 40) ^ (uint64_t(message.flags) << 56) ^ message.seq ^
                       (uint64_t(message.length) << 20));
    return true;
  }

  void stop() { stopped_ = true; }
  const std::vector<uint64_t>& digests() const { return digests_; }

 private:
  Framing framing_;
  uint32_t maxFrame_;
  Role role_;
  bool stopped_ = false;
  std::vector<uint64_t> digests_;
};

inline void checkBuffered(const Decoder& decoder, Framing framing, uint32_t maxFrame) {
  size_t bound = framing == Framing::Line ? size_t(maxFrame) + 1 : size_t(maxFrame);
  FUZZ_CHECK(decoder.bufferedBytes() <= bound);
}

inline int runDecoderFuzz(Framing framing, const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Role role = (data[0] & 1) ? Role::Client : Role::Server;
  const uint32_t maxFrame = kMaxFrames[(data[0] >> 1) & 3];
  const uint8_t* stream = data + 2;
  const size_t length = size - 2;
  const size_t at = length * data[1] / 255;

  // Whole stream in one feed: the reference.
  Decoder whole(framing, maxFrame, role);
  CheckingSink wholeSink(framing, maxFrame, role);
  ErrorCode wholeCode = whole.feed(stream, length, wholeSink);
  checkBuffered(whole, framing, maxFrame);

  // The same stream in two feeds (copied, so ASan sees each part's true bounds).
  std::vector<uint8_t> first(stream, stream + at);
  std::vector<uint8_t> second(stream + at, stream + length);
  Decoder split(framing, maxFrame, role);
  CheckingSink splitSink(framing, maxFrame, role);
  ErrorCode code = split.feed(first.data(), first.size(), splitSink);
  checkBuffered(split, framing, maxFrame);
  if (code != kOK) {
    splitSink.stop();
  } else {
    code = split.feed(second.data(), second.size(), splitSink);
    checkBuffered(split, framing, maxFrame);
    if (code != kOK) splitSink.stop();
  }
  if (framing == Framing::Raw) {
    FUZZ_CHECK(code == kOK && wholeCode == kOK);
  } else {
    FUZZ_CHECK(code == wholeCode);
    FUZZ_CHECK(splitSink.digests() == wholeSink.digests());
    FUZZ_CHECK(split.midMessage() == whole.midMessage());
  }

  // An error is sticky: more bytes (even a valid message) change nothing.
  if (code != kOK) {
    static const uint8_t kValid[] = {0xEB, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 'x', '\n', 0, 0, 0, 0};
    FUZZ_CHECK(split.feed(kValid, sizeof kValid, splitSink) == code);
    FUZZ_CHECK(split.feed(stream, length, splitSink) == code);
    FUZZ_CHECK(!split.midMessage());
    FUZZ_CHECK(split.bufferedBytes() == 0);
  }
  split.shrink();
  return 0;
}

}  // namespace fuzz
}  // namespace edgepoll
