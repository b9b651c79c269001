// Coarse per-loop timing: when the next pass over the loop's connections is
// due, and how far the pass in progress has got. One pass every ~1/4 of the
// smallest configured timeout (clamped to 10..1000 ms) instead of a timer per
// connection; a read only stores a stamp. A pass is walked a bounded slice per
// loop iteration (Sweeper::sweep), so 19,000 heartbeats due at once become many
// short iterations interleaved with I/O, never one long stall. A large pass is
// also paced over the first three quarters of its period: each connection keeps its own
// phase (its place in the live list), so PINGs leave at a steady rate instead
// of a burst every period that the peers' PONGs and every other process on
// the machine then compete with (issue 17: probe p999 8 ms with bursts).
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
  // How far into a list of `size` connections the pass may have got by `now`:
  // all of it for a small list, else in proportion to the time elapsed over
  // 3/4 of the period (the rest is slack for a late pass). Measured at 19,000
  // connections: half the period gave probe p999 4.3-8.0 ms, 3/4 3.5-4.1 ms.
  size_t paced(int64_t now, size_t size) const {
    if (size <= kPaceAbove) return size;
    int64_t spread = period_ * 3 / 4;
    int64_t elapsed = now - passStart_ + 1;
    if (spread <= 1 || elapsed >= spread) return size;
    return size_t(uint64_t(size) * uint64_t(elapsed) / uint64_t(spread));
  }
  // The slice stopped on pace at `cursor`: sleep until another chunk of the
  // list is due (a wake per ~64 connections, at most one a millisecond).
  void onPace(size_t cursor, size_t size, int64_t now) {
    ahead_ = true;
    uint64_t spread = period_ * 3 / 4;
    uint64_t at = uint64_t(passStart_) - 1 + ((cursor + kPaceChunk) * spread + size - 1) / size;
    wakeAt_ = int64_t(at) > now ? int64_t(at) : now + 1;
  }
  // It stopped on its budget and is behind: the next iteration must not sleep.
  void behind() { ahead_ = false; }
  // The pass reached the last slot: the next one starts a period after this one
  // started (or now, if the pass itself took longer than a period).
  void finish(int64_t now) {
    passing_ = false;
    next_ = passStart_ + period_ > now ? passStart_ + period_ : now;
  }
  void done(int64_t now) { next_ = now + period_; }
  size_t& cursor() { return cursor_; }
  // epoll_wait timeout until the next slice: a tick while a paced pass is on
  // pace, none while it is behind, else until the next pass.
  int waitMs(int64_t now) const {
    if (passing_) return ahead_ ? int(wakeAt_ > now ? wakeAt_ - now : 0) : 0;
    return now >= next_ ? 0 : int(next_ - now);
  }
  uint32_t period() const { return period_; }

 private:
  uint32_t period_ = 1000;
  int64_t next_ = 0;
  int64_t passStart_ = 0;
  size_t cursor_ = 0;
  bool passing_ = false;
  bool ahead_ = false;
  int64_t wakeAt_ = 0;
  static constexpr size_t kPaceChunk = 64;
  // Lists up to this size are walked at once: the pacing is for thousands.
  static constexpr size_t kPaceAbove = 1024;
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
