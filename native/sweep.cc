// Coarse timing (see sweep.h): the schedule, and Sweeper::sweep, which walks the
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

void Sweeper::sweep() {
  const int64_t now = loop_.now_;
  const std::vector<uint32_t>& live = loop_.slots_.live();
  clock_.begin(now);
  size_t& at = clock_.cursor();
  size_t visits = 0;
  unsigned actions = 0;
  const size_t until = clock_.paced(now, live.size());
  // The live list may lose entries between slices (freeClosed swaps the last
  // one in): a connection skipped that way is seen by the next pass.
  while (at < live.size()) {
    if (at >= until) {
      clock_.onPace(at, live.size(), now);
      return;
    }
    // The rest of the pass waits for the next iteration, after its I/O.
    if (visits == kSweepVisits || actions == kSweepActions) {
      loop_.stats_.sweepDeferred++;
      clock_.behind();
      return;
    }
    visits++;
    if (visit(loop_.slots_[live[at++]])) actions++;
  }
  clock_.finish(now);
}

// One connection's deadlines. true = it cost a PING or a close.
bool Sweeper::visit(Conn& conn) {
  const LoopConfig& config = loop_.config_;
  const int64_t now = loop_.now_;
  if (conn.state == ConnState::Closing) {
    if (now < conn.closeDeadline) return false;
    std::string reason = std::move(conn.closeReason);
    loop_.closeNow(conn, conn.closeCode, std::move(reason));
    return true;
  }
  if (conn.state != ConnState::Open) return false;
  if (conn.proxy) {
    // No PING or idle logic before the PROXY header: only its own deadline.
    if (now < conn.proxy->deadline) return false;
    loop_.reader_.abortProxy(conn, kEPROXY_TIMEOUT);
    return true;
  }
  if (heldBack(conn)) return false;
  const bool heartbeat = config.framing == Framing::Frame && config.heartbeatInterval != 0;
  int64_t silent = now - conn.lastRead;
  uint16_t code = kOK;
  if (config.frameTimeout != 0 && conn.messageStart != 0 && now - conn.messageStart >= config.frameTimeout) {
    code = kEFRAME_TIMEOUT;
  } else if (heartbeat) {
    if (conn.pingOutstanding && conn.lastRead >= conn.pingSentAt) conn.pingOutstanding = false;
    if (conn.pingOutstanding && silent >= int64_t(config.heartbeatInterval) + config.heartbeatTimeout) {
      code = kEHEARTBEAT_TIMEOUT;
    } else if (!conn.pingOutstanding && silent >= config.heartbeatInterval) {
      conn.pingOutstanding = true;
      conn.pingSentAt = now;
      loop_.writer_.sendFrame(conn, 0, kTypePing, ++pingSeq_ == 0 ? ++pingSeq_ : pingSeq_, nullptr, 0);
      return true;
    }
  }
  if (code == kOK && config.idleTimeout != 0 && silent >= config.idleTimeout) code = kEIDLE_TIMEOUT;
  if (code == kOK) return false;
  loop_.stats_.protocolErrors++;
  loop_.closeAfterFlush(conn, code, closeReason(code), config.framing == Framing::Frame);
  return true;
}

}  // namespace edgepoll
