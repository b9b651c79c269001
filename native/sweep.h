// Coarse per-loop timing: when the next pass over the loop's connections is
// due, and how far the pass in progress has got. One pass every ~1/4 of the
// smallest configured timeout (clamped to 10..1000 ms) instead of a timer per
// connection; a read only stores a stamp. A pass is walked a bounded slice per
// loop iteration (Sweeper::sweep), so 19,000 heartbeats due at once become many
// short iterations interleaved with I/O, never one long stall.
// SweepClock owns the schedule and the pass cursor; Sweeper owns the clock and
// the PING sequence, and walks the loop's live list judging each connection's
// deadlines (heartbeat, idle, frame, PROXY header, the flush of a closing one).
// Does not own: the connections (the loop's slot table).
// Runs on: the loop thread.
#pragma once
#include <cstddef>
#include <cstdint>

#include "conn.h"

namespace edgepoll {

class SweepClock {
 public:
  // Timeouts in ms, 0 = not configured.
  void configure(uint32_t heartbeatInterval, uint32_t heartbeatTimeout, uint32_t idleTimeout, uint32_t frameTimeout,
                 uint32_t proxyTimeout = 0);
  bool due(int64_t now) const { return passing_ || now >= next_; }
  // A pass starts at `now` (cursor at slot 0) unless one is under way.
  void begin(int64_t now) {
    if (passing_) return;
    passing_ = true;
    cursor_ = 0;
    passStart_ = now;
  }
  // The pass reached the last slot: the next one starts a period after this one
  // started (or now, if the pass itself took longer than a period).
  void finish(int64_t now) {
    passing_ = false;
    next_ = passStart_ + period_ > now ? passStart_ + period_ : now;
  }
  void done(int64_t now) { next_ = now + period_; }
  size_t& cursor() { return cursor_; }
  // epoll_wait timeout until the next slice: none while a pass is under way.
  int waitMs(int64_t now) const { return passing_ || now >= next_ ? 0 : int(next_ - now); }
  uint32_t period() const { return period_; }

 private:
  uint32_t period_ = 1000;
  int64_t next_ = 0;
  int64_t passStart_ = 0;
  size_t cursor_ = 0;
  bool passing_ = false;
};

class Loop;

class Sweeper {
 public:
  explicit Sweeper(Loop& loop) : loop_(loop) {}
  Sweeper(const Sweeper&) = delete;
  Sweeper& operator=(const Sweeper&) = delete;

  SweepClock& clock() { return clock_; }
  // One slice of the pass (sweep.cc); the rest after the next I/O.
  void sweep();
  // The loop reads a held-back connection again: its silence and its message
  // in progress are timed from now, not from before the hold.
  static void resumeClock(Conn& conn, int64_t now) {
    conn.lastRead = now;
    if (conn.messageStart != 0) conn.messageStart = now;
  }

 private:
  bool visit(Conn& conn);

  Loop& loop_;
  SweepClock clock_;
  uint32_t pingSeq_ = 0;
};

}  // namespace edgepoll
