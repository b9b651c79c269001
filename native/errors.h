// Error codes the native core can produce, and their names.
// Owns: the numbering shared with JS (src/errors.ts lists the same names in
// the same order; test/errors.test.ts checks they match). No Node-API here:
// the core returns these numbers and the bridge turns them into names.
#pragma once
#include <cstdint>

namespace edgepoll {

// X(name, close reason sent in a CLOSE frame, or "" when none is sent)
#define EDGEPOLL_ERRORS(X)                                            \
  X(OK, "")                                                           \
  X(ECONNRESET, "")                                                   \
  X(EPIPE, "")                                                        \
  X(ETIMEDOUT, "")                                                    \
  X(EMFILE, "")                                                       \
  X(ENFILE, "")                                                       \
  X(ENOSPC, "")                                                       \
  X(ENOMEM, "")                                                       \
  X(EIO, "")                                                          \
  X(EBAD_MAGIC, "protocol error: bad magic")                          \
  X(EBAD_FLAGS, "protocol error: reserved flags")                     \
  X(EBAD_TYPE, "protocol error: invalid type")                        \
  X(EUNKNOWN_CONTROL, "protocol error: unknown control type")         \
  X(EPING_TOO_LARGE, "protocol error: ping payload too large")        \
  X(EUNEXPECTED_GOAWAY, "protocol error: goaway from client")         \
  X(EFRAME_TOO_LARGE, "frame too large")                              \
  X(EFRAME_TIMEOUT, "frame timeout")                                  \
  X(EHEARTBEAT_TIMEOUT, "heartbeat timeout")                          \
  X(EIDLE_TIMEOUT, "idle timeout")                                    \
  X(ESLOW_CONSUMER, "slow consumer")                                  \
  X(ESERVER_FULL, "server full")                                      \
  X(ESHUTDOWN, "shutdown")                                            \
  X(ECLOSED_BY_PEER, "")                                              \
  X(EDESTROYED, "")                                                   \
  X(EPROXY_HEADER, "")                                                \
  X(EPROXY_TIMEOUT, "")                                               \
  X(EPROXY_UNTRUSTED, "")

enum ErrorCode : uint16_t {
#define EDGEPOLL_ENUM(name, reason) k##name,
  EDGEPOLL_ERRORS(EDGEPOLL_ENUM)
#undef EDGEPOLL_ENUM
  kErrorCount
};

inline const char* errorName(uint16_t code) {
  static const char* const names[] = {
#define EDGEPOLL_NAME(name, reason) #name,
      EDGEPOLL_ERRORS(EDGEPOLL_NAME)
#undef EDGEPOLL_NAME
  };
  return code < kErrorCount ? names[code] : "EUNKNOWN";
}

// The reason text put in the CLOSE frame for codes the server closes with.
inline const char* closeReason(uint16_t code) {
  static const char* const reasons[] = {
#define EDGEPOLL_REASON(name, reason) reason,
      EDGEPOLL_ERRORS(EDGEPOLL_REASON)
#undef EDGEPOLL_REASON
  };
  return code < kErrorCount ? reasons[code] : "";
}

// Maps an errno from a socket call to our code (EIO when it has no name here).
ErrorCode errnoCode(int err);

}  // namespace edgepoll
