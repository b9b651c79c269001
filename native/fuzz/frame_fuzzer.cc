// libFuzzer target: the frame framing decoder, fed in two parts at a
// fuzz-chosen split and compared with one whole feed (see harness.h).
// Built only by scripts/fuzz.sh, never into the addon. Runs on: the fuzzer's thread.
#include "harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return edgepoll::fuzz::runDecoderFuzz(edgepoll::Framing::Frame, data, size);
}
