// One connection of one loop: its id (slot + generation), state, timing
// stamps, decoder and write queue.
// Owns: the fd (closed by the loop through Loop::finalize), the partial-message
// buffer, the outbox. Does not own: the read buffer (one per loop), the batch.
// Runs on: the loop thread that accepted it; other threads never touch it
// (JS reaches it through commands carrying slot + generation).
// The paths that act on a Conn: Reader (reader.cc), Writer (writer.cc),
// closing in loop.cc, the slot table (slots.cc).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "codec.h"
#include "outbox.h"
#include "proxy.h"

namespace edgepoll {

enum class ConnState : uint8_t {
  Free,     // slot unused
  Open,     // reading and writing
  Closing,  // no more input; flushing the outbox, then closing (bounded by closeDeadline)
  Closed,   // fd closed this iteration; the slot is freed after the iteration
};

// A connection on a PROXY-protocol listener before its header is complete:
// nothing reaches the decoder or JS (no OPEN record) until it is.
struct ProxyPending {
  ProxyParser parser;
  std::string peerAddress;  // the real peer, used for v2 LOCAL / v1 UNKNOWN
  uint32_t peerPort = 0;
  int64_t deadline = 0;     // ms; the header must be complete by then (Sweeper::sweep)
};

struct Conn {
  // Laid out small fields first and together: tens of thousands of idle
  // connections each hold one (issue 17), so padding counts.
  int fd = -1;
  uint32_t slot = 0;
  uint32_t generation = 0;  // the slot's generation (SlotTable), bumped when it is freed
  uint32_t liveIndex = 0;   // position in the slot table's live list
  ConnState state = ConnState::Free;
  bool peerEnded = false;      // FIN received
  // RDHUP/HUP/ERR was reported: a FIN (or an error) waits behind the unread
  // bytes, and no new edge will announce it. Sticky until the slot is freed,
  // so that a read held back by any pause still reads through to EOF.
  bool peerHungUp = false;
  bool endRequested = false;   // JS asked for END: FIN once the outbox is empty
  bool finSent = false;
  bool readPaused = false;     // outbox above the high-water mark
  bool queued = false;         // on the loop's again list
  bool dirty = false;          // on the loop's dirty list: outbox bytes not yet offered to the kernel
  bool creditPaused = false;   // reads wait until JS consumes what it was handed (toJs)
  bool wantDrain = false;      // DRAIN owed once below the low-water mark
  bool pingOutstanding = false;
  bool announced = true;       // OPEN was recorded: JS knows it, so its CLOSE is recorded too
  uint16_t closeCode = 0;
  uint32_t interest = 0;       // level-triggered mode: the events registered now
  uint64_t toJs = 0;           // payload bytes in batches JS has not consumed yet
  int64_t lastRead = 0;        // ms; any byte is life (touched per read: O(1))
  int64_t messageStart = 0;    // ms when Decoder::midMessage() became true, 0 = none
  int64_t pingSentAt = 0;
  int64_t closeDeadline = 0;   // Closing: give up flushing at this time
  std::string closeReason;
  std::optional<Decoder> decoder;  // absent for raw framing
  std::unique_ptr<ProxyPending> proxy;  // set while a PROXY header is still expected
  Outbox outbox;
};

// Reason text of a close (the code's standard CLOSE reason when `reason` is empty).
std::string reasonFor(uint16_t code, const uint8_t* reason, size_t length);

}  // namespace edgepoll
