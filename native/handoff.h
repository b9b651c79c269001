// The loop's side of the hand-off to JavaScript: events become records in
// the current batch, batches go into the bounded ring to the bridge, and the
// batches JS has consumed come back to return read credit.
// Read credit: the ring lets a loop hand JS up to 64 batches; without a
// per-connection bound one fast peer could fill it, and JS's answers (a raw
// echo, say) would then land in that peer's outbox all at once, past
// maxBufferedAmount, closing a peer that does read (T24). So the payload bytes
// of a connection sitting in unconsumed batches count against a window, and
// its reads pause above it until JS hands those batches back.
// Owns: the batch being filled, the batches kept for reuse, the ring to the
// bridge and the ring of returns, the read window and the count of
// connections paused for credit. Does not own: the flags the bridge reads
// and clears (Loop::stalled, Loop::creditWanted), the bridge (Doorbell).
// Runs on: the loop thread; the bridge (JS thread) pops out() and pushes
// returns().
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "batch.h"
#include "conn.h"
#include "ring.h"

namespace edgepoll {

class Loop;

class Handoff {
 public:
  // ringBatches: LoopBounds::outRingBatches; readWindow: payload bytes one
  // connection may have with JS before its reads pause.
  Handoff(Loop& loop, size_t ringBatches, uint64_t readWindow)
      : loop_(loop), readWindow_(readWindow), out_(ringBatches), returns_(ringBatches + 8) {}
  ~Handoff();  // JS thread, after join(): frees whatever the rings still hold
  Handoff(const Handoff&) = delete;
  Handoff& operator=(const Handoff&) = delete;

  static Record recordFor(const Conn& conn, uint8_t kind) {
    Record r;
    r.kind = kind;
    r.slot = conn.slot;
    r.generation = conn.generation;
    return r;
  }
  // Appends a record (payload copied); a full batch is handed over at once.
  void record(const Record& record, const uint8_t* payload, size_t length);
  // Hands the batch to the bridge; a full ring blocks reads and accepts.
  void flush();
  // Takes back the batches JS consumed: credit returned, batches reused.
  void reclaim();
  void pauseForCredit(Conn& conn);
  // The slot is being freed.
  void forget(const Conn& conn) {
    if (conn.creditPaused) creditPaused_--;
  }

  bool blocked() const { return outputBlocked_; }  // out ring full: reads wait for the bridge
  bool creditPaused() const { return creditPaused_ != 0; }
  bool returnsPending() const { return !returns_.empty(); }
  uint64_t window() const { return readWindow_; }
  SpscRing<Batch*>& out() { return out_; }
  SpscRing<Batch*>& returns() { return returns_; }

 private:
  Loop& loop_;
  Batch* batch_ = nullptr;
  bool outputBlocked_ = false;
  size_t creditPaused_ = 0;  // connections waiting for read credit
  uint64_t readWindow_;
  std::vector<Batch*> spare_;  // batches JS handed back, credit reclaimed, ready for reuse
  SpscRing<Batch*> out_;
  SpscRing<Batch*> returns_;
};

}  // namespace edgepoll
