// PLACEHOLDER until the codec lands.
#include "codec.h"
namespace edgepoll {
Decoder::Decoder(Framing framing, uint32_t maxFrame, Role role) : framing_(framing), maxFrame_(maxFrame), role_(role) {}
ErrorCode Decoder::feed(const uint8_t*, size_t, MessageSink&) { return kEIO; }
bool Decoder::midMessage() const { return false; }
void Decoder::shrink() {}
}  // namespace edgepoll
