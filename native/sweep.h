// Coarse per-loop timing: when the next pass over the loop's connections is
// due, and how far the pass in progress has got. One pass every ~1/4 of the
// smallest configured timeout (clamped to 10..1000 ms) instead of a timer per
// connection; a read only stores a stamp. A pass is walked a bounded slice per
// loop iteration (Loop::sweep), so 19,000 heartbeats due at once become many
// short iterations interleaved with I/O, never one long stall.
// Owns: the schedule and the pass cursor. Does not own: the connections
// (Loop::sweep in sweep.cc walks them).
// Runs on: the loop thread.
#pragma once
#include <cstddef>
#include <cstdint>

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

}  // namespace edgepoll
