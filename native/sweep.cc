// Coarse timing (see sweep.h): the schedule, and Loop::sweep, which walks the
// loop's connections once per period. Loop thread only.
#include "sweep.h"

#include "loop.h"

namespace edgepoll {

void SweepClock::configure(uint32_t heartbeatInterval, uint32_t heartbeatTimeout, uint32_t idleTimeout, uint32_t frameTimeout,
                           uint32_t proxyTimeout) {
  uint32_t smallest = 4000;  // closing connections still need their 1 s flush bound checked
  for (uint32_t t : {heartbeatInterval, heartbeatTimeout, idleTimeout, frameTimeout, proxyTimeout}) {
    if (t != 0 && t < smallest) smallest = t;
  }
  uint32_t period = smallest / 4;
  period_ = period < 10 ? 10 : period > 1000 ? 1000 : period;
}

void Loop::sweep() {
  const bool heartbeat = config_.framing == Framing::Frame && config_.heartbeatInterval != 0;
  for (uint32_t slot : live_) {  // closing here only marks; live_ changes in freeClosed()
    Conn& conn = *conns_[slot];
    if (conn.state == ConnState::Closing) {
      if (now_ >= conn.closeDeadline) {
        std::string reason = std::move(conn.closeReason);
        closeNow(conn, conn.closeCode, std::move(reason));
      }
      continue;
    }
    if (conn.state != ConnState::Open) continue;
    if (conn.proxy) {
      // No PING or idle logic before the PROXY header: only its own deadline.
      if (now_ >= conn.proxy->deadline) abortProxy(conn, kEPROXY_TIMEOUT);
      continue;
    }
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
        continue;
      }
    }
    if (code == kOK && config_.idleTimeout != 0 && silent >= config_.idleTimeout) code = kEIDLE_TIMEOUT;
    if (code == kOK) continue;
    stats_.protocolErrors++;
    closeAfterFlush(conn, code, closeReason(code), config_.framing == Framing::Frame);
  }
}

}  // namespace edgepoll
