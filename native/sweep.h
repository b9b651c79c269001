// Coarse per-loop timing: when the next sweep over the loop's connections is
// due. One sweep every ~1/4 of the smallest configured timeout (clamped to
// 10..1000 ms) instead of a timer per connection; a read only stores a stamp.
// Owns: the schedule. Does not own: the connections (Loop::sweep in sweep.cc
// walks them).
// Runs on: the loop thread.
#pragma once
#include <cstdint>

namespace edgepoll {

class SweepClock {
 public:
  // Timeouts in ms, 0 = not configured.
  void configure(uint32_t heartbeatInterval, uint32_t heartbeatTimeout, uint32_t idleTimeout, uint32_t frameTimeout,
                 uint32_t proxyTimeout = 0);
  bool due(int64_t now) const { return now >= next_; }
  void done(int64_t now) { next_ = now + period_; }
  // epoll_wait timeout until the next sweep.
  int waitMs(int64_t now) const { return now >= next_ ? 0 : int(next_ - now); }
  uint32_t period() const { return period_; }

 private:
  uint32_t period_ = 1000;
  int64_t next_ = 0;
};

}  // namespace edgepoll
