// Writer (see writer.h): flushing, water marks, FIN after END. Loop thread.
#include "writer.h"

#include <sys/socket.h>

#include "loop.h"

namespace edgepoll {

bool Writer::closeSlow(Conn& conn) {
  // A peer that does not read: sending it CLOSE would only queue more.
  loop_.stats_.protocolErrors++;
  loop_.closeNow(conn, kESLOW_CONSUMER, closeReason(kESLOW_CONSUMER));
  return true;
}

void Writer::flushDirty() {
  // Flushing may close connections (EPIPE) but never dirties another one.
  for (uint32_t slot : dirty_) {
    Conn& conn = loop_.slots_[slot];
    if (!conn.dirty) continue;
    conn.dirty = false;
    if (conn.state == ConnState::Open || conn.state == ConnState::Closing) onWritable(conn);
  }
  dirty_.clear();
}

void Writer::onWritable(Conn& conn) {
  if (conn.outbox.empty()) return updateWater(conn);
  uint64_t written = 0;
  int err = conn.outbox.flush(conn.fd, &written);
  loop_.stats_.bytesOut += written;
  if (err != 0) return loop_.closeNow(conn, errnoCode(err), "");
  if (conn.outbox.retry()) retry_.push_back(conn.slot);
  updateWater(conn);
}

void Writer::updateWater(Conn& conn) {
  if (conn.fd < 0) return;
  if (closeIfSlow(conn)) return;
  const LoopConfig& config = loop_.config_;
  Handoff& handoff = loop_.handoff_;
  size_t size = conn.outbox.size();
  size_t lowWater = config.highWaterMark / 2;
  if (size > config.highWaterMark && !conn.readPaused && conn.state == ConnState::Open) {
    conn.readPaused = true;
    conn.wantDrain = true;
    Record r = Handoff::recordFor(conn, kRecordBackpressure);
    r.value = uint32_t(size);
    handoff.record(r, nullptr, 0);
  } else if (size <= lowWater) {
    if (conn.readPaused) {
      conn.readPaused = false;
      loop_.reader_.queueAgain(conn);  // bytes may have arrived (and their edge passed) while paused
    }
    if (conn.wantDrain && conn.state == ConnState::Open) {
      conn.wantDrain = false;
      Record r = Handoff::recordFor(conn, kRecordDrain);
      r.value = uint32_t(size);
      handoff.record(r, nullptr, 0);
    }
  }
  if (size == 0) {
    if (conn.state == ConnState::Closing) return loop_.finalize(conn);
    if (conn.endRequested && !conn.finSent) {
      conn.finSent = true;
      if (conn.peerEnded) return loop_.closeNow(conn, kOK, "");
      shutdown(conn.fd, SHUT_WR);
    }
  }
  loop_.setInterest(conn);
}

void Writer::end(Conn& conn) {
  if (conn.state != ConnState::Open || conn.endRequested) return;
  conn.endRequested = true;
  updateWater(conn);
}

void Writer::retry() {
  if (retry_.empty()) return;
  std::vector<uint32_t> list;
  list.swap(retry_);
  for (uint32_t slot : list) {
    // The connection may have closed and its slot been released since it asked.
    Conn* conn = loop_.slots_.find(slot);
    if (conn && (conn->state == ConnState::Open || conn->state == ConnState::Closing)) markDirty(*conn);
  }
}

}  // namespace edgepoll
