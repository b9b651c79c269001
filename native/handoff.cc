// The loop's side of the hand-off to JavaScript: events become records in
// the current batch, batches go into the bounded ring to the bridge, and the
// batches JS has consumed come back to return read credit.
// Owns: nothing of its own (Loop methods; state in loop.h). Runs on: the
// loop thread only; the bridge (JS thread) pops the ring and pushes returns.
#include "conn.h"
#include "loop.h"

namespace edgepoll {

Record Loop::recordFor(const Conn& conn, uint8_t kind) {
  Record r;
  r.kind = kind;
  r.slot = conn.slot;
  r.generation = conn.generation;
  return r;
}

void Loop::record(const Record& r, const uint8_t* payload, size_t length) {
  if (!batch_) {
    reclaim();
    if (spare_.empty()) {
      batch_ = new Batch();
    } else {
      batch_ = spare_.back();
      spare_.pop_back();
    }
  }
  if (r.kind == kRecordData || r.kind == kRecordMessage) conns_[r.slot]->toJs += length;
  batch_->add(r, payload, length);
  if (batch_->bytes() >= config_.bounds.batchSoftCap) flushBatch();
}

// Read credit. The ring lets a loop hand JS up to 64 batches; without a
// per-connection bound one fast peer could fill it, and JS's answers (a raw
// echo, say) would then land in that peer's outbox all at once, past
// maxBufferedAmount, closing a peer that does read (T24). So the payload bytes
// of a connection sitting in unconsumed batches count against a window, and
// its reads pause above it until JS hands those batches back.
void Loop::reclaim() {
  Batch* batch;
  while (returns_.pop(batch)) {
    batch->forEachPayload([this](uint32_t slot, uint32_t generation, uint32_t length) {
      Conn* conn = lookup(slot, generation);
      if (!conn) return;
      conn->toJs -= conn->toJs < length ? conn->toJs : length;
      if (conn->creditPaused && conn->toJs <= readWindow_ / 2) {
        conn->creditPaused = false;
        creditPaused_--;
        queueAgain(*conn);  // bytes that arrived meanwhile raised no new edge
      }
    });
    // Batches kept for reuse are bounded (LoopBounds::spareBatches): one JS
    // stall fills the ring (64 batches, up to tens of MiB), and keeping them
    // all would hold that memory for ever. A loop in steady state cycles
    // through a few.
    if (spare_.size() < config_.bounds.spareBatches) {
      batch->reset();
      spare_.push_back(batch);
    } else {
      delete batch;
    }
  }
  if (creditPaused_ == 0) creditWanted.store(false);
}

void Loop::pauseForCredit(Conn& conn) {
  if (conn.creditPaused) return;
  conn.creditPaused = true;
  creditPaused_++;
  // seq_cst, and run() fences again before sleeping: either the bridge sees
  // the flag after returning a batch, or run() sees the returned batch.
  creditWanted.store(true);
}

void Loop::flushBatch() {
  if (!batch_ || batch_->empty()) return;
  bool pushed = out_.push(batch_);
  if (!pushed) {
    // Tell the bridge to wake us when it drains, then retry once: it may
    // have drained between the failed push and the flag.
    stalled = true;
    pushed = out_.push(batch_);
    if (pushed) stalled = false;
  }
  if (pushed) {
    batch_ = nullptr;
    outputBlocked_ = false;
    stats_.batches++;
    shared_.doorbell->ring();
  } else {
    if (!outputBlocked_) stats_.ringFull++;
    outputBlocked_ = true;
  }
}

}  // namespace edgepoll
