// Wire constants of the edgepoll frame (docs/PROTOCOL.md section 2).
// Owns: numbers only. Shared by the codec, the loop and the load generator.
#pragma once
#include <cstdint>
#include <cstring>

namespace edgepoll {

constexpr uint8_t kMagic = 0xEB;
constexpr size_t kHeaderSize = 12;
constexpr uint8_t kFlagResponse = 0x01;
constexpr uint8_t kFlagError = 0x02;
constexpr uint8_t kReservedFlags = 0xFC;
constexpr uint16_t kControlFirst = 0xFF00;
constexpr uint16_t kTypePing = 0xFF01;
constexpr uint16_t kTypePong = 0xFF02;
constexpr uint16_t kTypeClose = 0xFF03;
constexpr uint16_t kTypeGoaway = 0xFF04;
constexpr uint32_t kMaxPingPayload = 64;

enum class Framing : uint8_t { Frame = 0, Length = 1, Line = 2, Raw = 3 };

inline void putU16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8); p[1] = uint8_t(v); }
inline void putU32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24); p[1] = uint8_t(v >> 16); p[2] = uint8_t(v >> 8); p[3] = uint8_t(v);
}
inline uint16_t getU16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
inline uint32_t getU32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Writes a 12-byte header into out.
inline void encodeHeader(uint8_t* out, uint8_t flags, uint16_t type, uint32_t length, uint32_t seq) {
  out[0] = kMagic;
  out[1] = flags;
  putU16(out + 2, type);
  putU32(out + 4, length);
  putU32(out + 8, seq);
}

}  // namespace edgepoll
