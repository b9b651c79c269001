// The write path of one loop's connections. Writes are corked: bytes are
// appended to a connection's outbox and offered to the kernel once per loop
// iteration (the dirty list), so the replies to one pipelined read, or to one
// JS command block, leave in one writev and a few segments instead of a
// syscall and a segment each (S3 pipelined went from 0.15x to well above
// node:net; bench/RESULTS.md). Water marks are judged after the flush, on what
// the kernel did not take: BACKPRESSURE/DRAIN records, reads paused above the
// high-water mark, a slow consumer closed past maxBufferedAmount, the FIN once
// an END's outbox is empty, and flushes the kernel refused (ENOBUFS/ENOMEM)
// offered again next iteration.
// Owns: the dirty list and the retry list. Does not own: the outboxes (each
// Conn's), the closing of a connection (Loop).
// Runs on: the loop thread. send/sendShared/sendFrame/markDirty are inline
// (their bodies at the end of loop.h): they run once per message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "conn.h"

namespace edgepoll {

class Loop;

class Writer {
 public:
  static constexpr int kRetryMs = 5;  // ENOBUFS: the kernel is short of memory; do not spin on it

  explicit Writer(Loop& loop) : loop_(loop) {}
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  inline void send(Conn& conn, const uint8_t* data, size_t length);
  inline void sendShared(Conn& conn, const SharedBytes& bytes);
  inline void sendFrame(Conn& conn, uint8_t flags, uint16_t type, uint32_t seq, const uint8_t* payload, size_t length);
  // Queued for this iteration's flush (after the slow-consumer check).
  inline void markDirty(Conn& conn);
  // The hard limit (docs/PROTOCOL.md section 4), checked when bytes are queued
  // and again on what the kernel did not take. true: the connection is closed.
  inline bool closeIfSlow(Conn& conn);
  // End of the iteration: every dirty outbox offered to the kernel once.
  void flushDirty();
  void onWritable(Conn& conn);
  void updateWater(Conn& conn);
  void end(Conn& conn);  // END from JS: FIN once the outbox is empty
  void retry();          // flushes refused last iteration become dirty again
  bool retrying() const { return !retry_.empty(); }

 private:
  bool closeSlow(Conn& conn);  // closeIfSlow's verdict carried out

  Loop& loop_;
  std::vector<uint32_t> dirty_;  // connections written to in this iteration: flushed once, at its end
  std::vector<uint32_t> retry_;  // flushes stopped by ENOBUFS/ENOMEM: offered again next iteration
};

}  // namespace edgepoll
