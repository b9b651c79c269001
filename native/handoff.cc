// Handoff (see handoff.h): records, batches, read credit. Loop thread.
#include "handoff.h"

#include "loop.h"

namespace edgepoll {

Handoff::~Handoff() {
  delete batch_;
  Batch* batch;
  while (out_.pop(batch)) delete batch;
  while (returns_.pop(batch)) delete batch;
  for (Batch* spare : spare_) delete spare;
}

void Handoff::record(const Record& r, const uint8_t* payload, size_t length) {
  if (!batch_) {
    reclaim();
    if (spare_.empty()) {
      batch_ = new Batch();
    } else {
      batch_ = spare_.back();
      spare_.pop_back();
    }
  }
  if (r.kind == kRecordData || r.kind == kRecordMessage) loop_.slots_[r.slot].toJs += length;
  batch_->add(r, payload, length);
  if (batch_->bytes() >= loop_.config_.bounds.batchSoftCap) flush();
}

void Handoff::reclaim() {
  Batch* batch;
  while (returns_.pop(batch)) {
    batch->forEachPayload([this](uint32_t slot, uint32_t generation, uint32_t length) {
      Conn* conn = loop_.slots_.lookup(slot, generation);
      if (!conn) return;
      conn->toJs -= conn->toJs < length ? conn->toJs : length;
      if (conn->creditPaused && conn->toJs <= readWindow_ / 2) {
        conn->creditPaused = false;
        creditPaused_--;
        loop_.reader_.queueAgain(*conn);  // bytes that arrived meanwhile raised no new edge
      }
    });
    // Batches kept for reuse are bounded (LoopBounds::spareBatches): one JS
    // stall fills the ring (64 batches, up to tens of MiB), and keeping them
    // all would hold that memory for ever. A loop in steady state cycles
    // through a few.
    if (spare_.size() < loop_.config_.bounds.spareBatches) {
      batch->reset();
      spare_.push_back(batch);
    } else {
      delete batch;
    }
  }
  if (creditPaused_ == 0) loop_.creditWanted.store(false);
}

void Handoff::pauseForCredit(Conn& conn) {
  if (conn.creditPaused) return;
  conn.creditPaused = true;
  creditPaused_++;
  // seq_cst, and Loop::run fences again before sleeping: either the bridge
  // sees the flag after returning a batch, or run() sees the returned batch.
  loop_.creditWanted.store(true);
}

void Handoff::flush() {
  if (!batch_ || batch_->empty()) return;
  bool pushed = out_.push(batch_);
  if (!pushed) {
    // Tell the bridge to wake us when it drains, then retry once: it may
    // have drained between the failed push and the flag.
    loop_.stalled = true;
    pushed = out_.push(batch_);
    if (pushed) loop_.stalled = false;
  }
  if (pushed) {
    batch_ = nullptr;
    outputBlocked_ = false;
    loop_.stats_.batches++;
    loop_.shared_.doorbell->ring();
  } else {
    if (!outputBlocked_) loop_.stats_.ringFull++;
    outputBlocked_ = true;
  }
}

}  // namespace edgepoll
