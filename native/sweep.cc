// Coarse timing (see sweep.h): the schedule, and Loop::sweep, which walks the
// loop's connections once per period, a bounded slice per loop iteration.
// Loop thread only.
#include "sweep.h"

#include "loop.h"

namespace edgepoll {

namespace {
// Per loop iteration: slots looked at, and PINGs or closes made. A visit that
// only compares stamps costs nanoseconds; a PING is an outbox append and,
// at the iteration's end, a sendmsg. 64 of those keep one iteration well under
// a millisecond, so a probe on the same loop waits at most that long even when
// every connection's heartbeat is due at once (issue 17: 19,000 PINGs in one
// go stalled the loop ~100 ms).
constexpr size_t kSweepVisits = 2048;
constexpr unsigned kSweepActions = 64;
}  // namespace

void SweepClock::configure(uint32_t heartbeatInterval, uint32_t heartbeatTimeout, uint32_t idleTimeout, uint32_t frameTimeout,
                           uint32_t proxyTimeout) {
  uint32_t smallest = 4000;  // closing connections still need their 1 s flush bound checked
  for (uint32_t t : {heartbeatInterval, heartbeatTimeout, idleTimeout, frameTimeout, proxyTimeout}) {
    if (t != 0 && t < smallest) smallest = t;
  }
  uint32_t period = smallest / 4;
  period_ = period < 10 ? 10 : period > 1000 ? 1000 : period;
}

// The loop itself holds this connection's input back: it sits on the again
// list (the batch ring is full, or its read budget ran out) or waits for JS to
// hand its read credit back. Whatever the peer sent meanwhile is unread, so
// its silence cannot be judged (issue 11 item 2: a 2 s JS stall closed chatty
// peers as "heartbeat timeout").
static bool heldBack(const Conn& conn) { return conn.queued || conn.creditPaused; }

// The loop reads a held-back connection again: its silence and its message in
// progress are timed from now, not from before the hold.
void Loop::resumeClock(Conn& conn) {
  conn.lastRead = now_;
  if (conn.messageStart != 0) conn.messageStart = now_;
}

void Loop::sweep() {
  sweepClock_.begin(now_);
  size_t& at = sweepClock_.cursor();
  size_t visits = 0;
  unsigned actions = 0;
  // live_ may lose entries between slices (freeClosed swaps the last one in):
  // a connection skipped that way is seen by the next pass.
  while (at < live_.size()) {
    // The rest of the pass waits for the next iteration, after its I/O.
    if (visits == kSweepVisits || actions == kSweepActions) {
      stats_.sweepDeferred++;
      return;
    }
    visits++;
    if (visit(*conns_[live_[at++]])) actions++;
  }
  sweepClock_.finish(now_);
}

// One connection's deadlines. true = it cost a PING or a close.
bool Loop::visit(Conn& conn) {
  if (conn.state == ConnState::Closing) {
    if (now_ < conn.closeDeadline) return false;
    std::string reason = std::move(conn.closeReason);
    closeNow(conn, conn.closeCode, std::move(reason));
    return true;
  }
  if (conn.state != ConnState::Open) return false;
  if (conn.proxy) {
    // No PING or idle logic before the PROXY header: only its own deadline.
    if (now_ < conn.proxy->deadline) return false;
    abortProxy(conn, kEPROXY_TIMEOUT);
    return true;
  }
  if (heldBack(conn)) return false;
  const bool heartbeat = config_.framing == Framing::Frame && config_.heartbeatInterval != 0;
  int64_t silent = now_ - conn.lastRead;
  uint16_t code = kOK;
  if (config_.frameTimeout != 0 && conn.messageStart != 0 && now_ - conn.messageStart >= config_.frameTimeout) {
    code = kEFRAME_TIMEOUT;
  } else if (heartbeat) {
    if (conn.pingOutstanding && conn.lastRead >= conn.pingSentAt) conn.pingOutstanding = false;
    if (conn.pingOutstanding && silent >= int64_t(config_.heartbeatInterval) + config_.heartbeatTimeout) {
      code = kEHEARTBEAT_TIMEOUT;
    } else if (!conn.pingOutstanding && silent >= config_.heartbeatInterval) {
      conn.pingOutstanding = true;
      conn.pingSentAt = now_;
      sendFrame(conn, 0, kTypePing, ++pingSeq_ == 0 ? ++pingSeq_ : pingSeq_, nullptr, 0);
      return true;
    }
  }
  if (code == kOK && config_.idleTimeout != 0 && silent >= config_.idleTimeout) code = kEIDLE_TIMEOUT;
  if (code == kOK) return false;
  stats_.protocolErrors++;
  closeAfterFlush(conn, code, closeReason(code), config_.framing == Framing::Frame);
  return true;
}

}  // namespace edgepoll
