// The per-connection paths of a Loop: read → decode → records, writes and
// water marks, half-close, closing. Loop thread only (see conn.h, loop.h).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "loop.h"
#include "sys.h"

namespace edgepoll {

namespace {
constexpr int64_t kCloseFlushMs = 1000;     // a closing connection gets this long to flush

enum CommandOp : uint8_t { kOpWrite = 1, kOpEnd = 2, kOpDestroy = 3, kOpClose = 4 };

uint16_t le16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
uint32_t le32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
}  // namespace

std::string reasonFor(uint16_t code, const uint8_t* reason, size_t length) {
  if (length > 0) return std::string(reinterpret_cast<const char*>(reason), length);
  return closeReason(code);
}

// Feeds decoded messages of one connection back into its loop.
class ConnSink final : public MessageSink {
 public:
  ConnSink(Loop& loop, Conn& conn) : loop_(loop), conn_(conn) {}
  bool onMessage(const Message& message) override { return loop_.onMessage(conn_, message); }

 private:
  Loop& loop_;
  Conn& conn_;
};

Conn* Loop::lookup(uint32_t slot, uint32_t generation) {
  if (slot >= conns_.size()) return nullptr;
  Conn* conn = conns_[slot].get();
  if (!conn || conn->generation != generation) return nullptr;
  if (conn->state != ConnState::Open && conn->state != ConnState::Closing) return nullptr;
  return conn;
}

void Loop::queueAgain(Conn& conn) {
  if (conn.queued) return;
  conn.queued = true;
  again_.push_back(conn.slot);
  setInterest(conn);
}

void Loop::setInterest(Conn& conn) {
  if (!config_.levelTriggered || conn.fd < 0) return;
  // Level-triggered diagnostic mode: register only what we want now, or a
  // writable socket / a socket at EOF would wake us forever.
  uint32_t want = 0;
  if (conn.state == ConnState::Open && !conn.peerEnded && !conn.readPaused && !conn.queued) want |= EPOLLIN | EPOLLRDHUP;
  if (!conn.outbox.empty()) want |= EPOLLOUT;
  if (want == conn.interest) return;
  epoll_event event;
  event.events = want;
  event.data.u64 = tokenFor(conn);
  if (epoll_ctl(epollFd_, EPOLL_CTL_MOD, conn.fd, &event) == 0) conn.interest = want;
}

void Loop::readConn(Conn& conn) {
  if (conn.state != ConnState::Open || conn.peerEnded || conn.readPaused || conn.creditPaused) return;
  size_t budget = config_.bounds.readBudget;
  for (;;) {
    if (conn.toJs >= readWindow_) return pauseForCredit(conn);
    // The edge will not fire again for bytes we leave unread: remember them.
    if (outputBlocked_ || budget == 0) return queueAgain(conn);
    ssize_t n = readSome(conn.fd, readBuffer_.data(), readBuffer_.size());
    if (n > 0) {
      stats_.bytesIn += uint64_t(n);
      conn.lastRead = now_;
      budget -= size_t(n) < budget ? size_t(n) : budget;
      deliver(conn, readBuffer_.data(), size_t(n));
      if (conn.state != ConnState::Open || conn.readPaused) return;
      // A short read drained the socket: new bytes raise a new edge. But once
      // the peer hung up no edge comes again (whatever pause consumed the
      // one that said so), so then only EAGAIN or EOF ends the read.
      if (size_t(n) < readBuffer_.size() && !conn.peerHungUp) return;
      continue;
    }
    if (n == 0) return onPeerEnd(conn);
    if (n == -EAGAIN || n == -EWOULDBLOCK) return;
    return closeNow(conn, errnoCode(int(-n)), "");
  }
}

void Loop::deliver(Conn& conn, const uint8_t* data, size_t length) {
  if (conn.proxy) return deliverProxy(conn, data, length);
  if (!conn.decoder) {
    if (config_.nativeEcho) return send(conn, data, length);
    record(recordFor(conn, kRecordData), data, length);
    return;
  }
  ConnSink sink(*this, conn);
  ErrorCode error = conn.decoder->feed(data, length, sink);
  if (conn.state != ConnState::Open) return;
  if (error != kOK) {
    stats_.protocolErrors++;
    return closeAfterFlush(conn, error, closeReason(error), config_.framing == Framing::Frame);
  }
  if (conn.decoder->midMessage()) {
    if (conn.messageStart == 0) conn.messageStart = now_;
  } else {
    conn.messageStart = 0;
    conn.decoder->shrink();
  }
}

bool Loop::onMessage(Conn& conn, const Message& message) {
  if (conn.state != ConnState::Open) return false;
  if (config_.framing == Framing::Frame) {
    if (message.type >= kControlFirst) {
      if (message.type == kTypePing) {
        sendFrame(conn, 0, kTypePong, message.seq, message.data, message.length);
        return conn.state == ConnState::Open;
      }
      if (message.type == kTypeClose) {
        // The peer is closing: flush what was queued, close, report its reason.
        closeAfterFlush(conn, kECLOSED_BY_PEER, std::string(reinterpret_cast<const char*>(message.data), message.length), false);
        return false;
      }
      return true;  // PONG: any byte was life already
    }
    if (config_.nativeEcho && message.type == 1 && message.seq != 0 && !(message.flags & kFlagResponse)) {
      sendFrame(conn, kFlagResponse, message.type, message.seq, message.data, message.length);
      return conn.state == ConnState::Open;
    }
    Record r = recordFor(conn, kRecordMessage);
    r.flags = message.flags;
    r.type = message.type;
    r.seq = message.seq;
    record(r, message.data, message.length);
    return true;
  }
  if (config_.nativeEcho) {
    // Echo in the same framing.
    if (config_.framing == Framing::Length) {
      uint8_t prefix[4];
      putU32(prefix, message.length);
      send(conn, prefix, 4);
      send(conn, message.data, message.length);
    } else {
      send(conn, message.data, message.length);
      send(conn, reinterpret_cast<const uint8_t*>("\n"), 1);
    }
    return conn.state == ConnState::Open;
  }
  record(recordFor(conn, kRecordData), message.data, message.length);
  return true;
}

void Loop::onPeerEnd(Conn& conn) {
  if (conn.proxy) {
    // A plain connect-close (a load balancer's TCP check) is not an error;
    // a FIN inside a header is (spec: reject partial headers).
    if (conn.proxy->parser.received() == 0) return closeNow(conn, kOK, "");
    return abortProxy(conn, kEPROXY_HEADER);
  }
  conn.peerEnded = true;
  conn.messageStart = 0;
  record(recordFor(conn, kRecordEnd), nullptr, 0);
  // allowHalfOpen=false: JS answers END with an END command after the writes
  // it made for the data before the FIN, so nothing it sends is cut off.
  if (conn.finSent) return closeNow(conn, kOK, "");
  setInterest(conn);
}

void Loop::onWritable(Conn& conn) {
  if (conn.outbox.empty()) return updateWater(conn);
  uint64_t written = 0;
  int err = conn.outbox.flush(conn.fd, &written);
  stats_.bytesOut += written;
  if (err != 0) return closeNow(conn, errnoCode(err), "");
  if (conn.outbox.retry()) writeRetry_.push_back(conn.slot);
  updateWater(conn);
}

// Writes are corked: bytes are appended here and offered to the kernel once
// per loop iteration (flushDirty), so the replies to one pipelined read, or
// to one JS command block, leave in one writev and a few segments instead of
// a syscall and a segment each (measured: S3 pipelined went from 0.15x to
// well above node:net; see bench/RESULTS.md). Water marks are judged after
// the flush, on what the kernel did not take.
void Loop::send(Conn& conn, const uint8_t* data, size_t length) {
  if (conn.state != ConnState::Open || length == 0) return;
  conn.outbox.append(data, length);
  markDirty(conn);
}

void Loop::sendShared(Conn& conn, const SharedBytes& bytes) {
  if (conn.state != ConnState::Open) return;
  conn.outbox.appendShared(bytes);
  markDirty(conn);
}

void Loop::sendFrame(Conn& conn, uint8_t flags, uint16_t type, uint32_t seq, const uint8_t* payload, size_t length) {
  uint8_t header[kHeaderSize];
  encodeHeader(header, flags, type, uint32_t(length), seq);
  send(conn, header, kHeaderSize);  // small appends coalesce in the outbox's last chunk
  send(conn, payload, length);
}

// The hard limit (PROTOCOL.md section 4), checked when bytes are queued and
// again on what the kernel did not take. true: the connection is closed.
bool Loop::closeIfSlow(Conn& conn) {
  if (conn.state != ConnState::Open || conn.outbox.size() <= config_.maxBufferedAmount) return false;
  // A peer that does not read: sending it CLOSE would only queue more.
  stats_.protocolErrors++;
  closeNow(conn, kESLOW_CONSUMER, closeReason(kESLOW_CONSUMER));
  return true;
}

void Loop::markDirty(Conn& conn) {
  if (closeIfSlow(conn)) return;
  if (conn.dirty) return;
  conn.dirty = true;
  dirty_.push_back(conn.slot);
}

void Loop::flushDirty() {
  // Flushing may close connections (EPIPE) but never dirties another one.
  for (uint32_t slot : dirty_) {
    Conn& conn = *conns_[slot];
    if (!conn.dirty) continue;
    conn.dirty = false;
    if (conn.state == ConnState::Open || conn.state == ConnState::Closing) onWritable(conn);
  }
  dirty_.clear();
}

void Loop::updateWater(Conn& conn) {
  if (conn.fd < 0) return;
  if (closeIfSlow(conn)) return;
  size_t size = conn.outbox.size();
  size_t lowWater = config_.highWaterMark / 2;
  if (size > config_.highWaterMark && !conn.readPaused && conn.state == ConnState::Open) {
    conn.readPaused = true;
    conn.wantDrain = true;
    Record r = recordFor(conn, kRecordBackpressure);
    r.value = uint32_t(size);
    record(r, nullptr, 0);
  } else if (size <= lowWater) {
    if (conn.readPaused) {
      conn.readPaused = false;
      queueAgain(conn);  // bytes may have arrived (and their edge passed) while paused
    }
    if (conn.wantDrain && conn.state == ConnState::Open) {
      conn.wantDrain = false;
      Record r = recordFor(conn, kRecordDrain);
      r.value = uint32_t(size);
      record(r, nullptr, 0);
    }
  }
  if (size == 0) {
    if (conn.state == ConnState::Closing) return finalize(conn);
    if (conn.endRequested && !conn.finSent) {
      conn.finSent = true;
      if (conn.peerEnded) return closeNow(conn, kOK, "");
      shutdown(conn.fd, SHUT_WR);
    }
  }
  setInterest(conn);
}

void Loop::endConn(Conn& conn) {
  if (conn.state != ConnState::Open || conn.endRequested) return;
  conn.endRequested = true;
  updateWater(conn);
}

void Loop::closeAfterFlush(Conn& conn, uint16_t code, std::string reason, bool sendCloseFrame) {
  if (conn.state != ConnState::Open) return;
  if (sendCloseFrame) sendFrame(conn, 0, kTypeClose, 0, reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
  if (conn.state != ConnState::Open) return;  // the CLOSE frame itself failed
  conn.state = ConnState::Closing;
  conn.closeCode = code;
  conn.closeReason = std::move(reason);
  conn.closeDeadline = now_ + kCloseFlushMs;
  // Bytes after this are never delivered: reads stop with the state (the
  // decoder may be mid-feed here, so it is freed with the slot).
  if (conn.outbox.empty()) return finalize(conn);
  setInterest(conn);
}

void Loop::closeNow(Conn& conn, uint16_t code, std::string reason) {
  if (conn.state != ConnState::Open && conn.state != ConnState::Closing) return;
  conn.closeCode = code;
  conn.closeReason = std::move(reason);
  conn.outbox.clear();
  finalize(conn);
}

void Loop::finalize(Conn& conn) {
  // EPOLL_CTL_DEL before close: the registration belongs to the open file
  // description, which another dup could keep alive.
  epoll_ctl(epollFd_, EPOLL_CTL_DEL, conn.fd, nullptr);
  close(conn.fd);
  conn.fd = -1;
  conn.state = ConnState::Closed;
  shared_.connections--;
  stats_.connections--;
  if (conn.announced) {
    Record r = recordFor(conn, kRecordClose);
    r.code = conn.closeCode;
    record(r, reinterpret_cast<const uint8_t*>(conn.closeReason.data()), conn.closeReason.size());
  }
  closed_.push_back(conn.slot);
}

bool Loop::trustedPeer(const sockaddr_storage& address) const {
  uint8_t bytes[16] = {0};
  if (address.ss_family == AF_INET) {
    bytes[10] = bytes[11] = 0xFF;
    std::memcpy(bytes + 12, &reinterpret_cast<const sockaddr_in*>(&address)->sin_addr, 4);
  } else if (address.ss_family == AF_INET6) {
    std::memcpy(bytes, &reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr, 16);
  } else {
    return address.ss_family == AF_UNIX && config_.proxyTrustUnix;  // no address to match: trusted only by "unix"
  }
  return proxyTrusted(config_.proxyTrusted, bytes);
}

void Loop::deliverProxy(Conn& conn, const uint8_t* data, size_t length) {
  ProxyResult result = conn.proxy->parser.feed(data, length);
  if (result.status == ProxyStatus::NeedMore) return;
  if (result.status == ProxyStatus::Error) return abortProxy(conn, kEPROXY_HEADER);
  std::unique_ptr<ProxyPending> pending = std::move(conn.proxy);
  const ProxyParser& parser = pending->parser;
  if (parser.hasAddress()) announce(conn, parser.sourceAddress(), parser.sourcePort(), parser.tls());
  else announce(conn, pending->peerAddress, pending->peerPort, parser.tls());
  conn.lastRead = now_;  // heartbeat and idle time start with the application's first byte
  // Bytes after the header in the same read are protocol data.
  if (result.consumed < length && conn.state == ConnState::Open) deliver(conn, data + result.consumed, length - result.consumed);
}

void Loop::announce(Conn& conn, const std::string& address, uint32_t port, const ProxyTls* tls) {
  conn.announced = true;
  Record open = recordFor(conn, kRecordOpen);
  open.value = port;
  if (tls == nullptr) return record(open, reinterpret_cast<const uint8_t*>(address.data()), address.size());
  open.flags = 1;
  open.seq = uint32_t(address.size());  // where the address ends and the TLS details begin
  std::string slab = address;
  appendProxyTls(*tls, &slab);
  record(open, reinterpret_cast<const uint8_t*>(slab.data()), slab.size());
}

void Loop::abortProxy(Conn& conn, uint16_t code) {
  // The peer is a proxy, not an edgepoll client: no CLOSE frame, no records
  // (JS never saw this connection), just a counted abort.
  stats_.proxyErrors++;
  stats_.protocolErrors++;
  closeNow(conn, code, "");
}

void Loop::applyCommands(const uint8_t* bytes, size_t length) {
  size_t at = 0;
  while (at + 16 <= length) {
    const uint8_t* c = bytes + at;
    uint8_t op = c[0];
    uint8_t flags = c[1];
    uint16_t code = le16(c + 2);
    uint32_t slot = le32(c + 4);
    uint32_t generation = le32(c + 8);
    uint32_t size = le32(c + 12);
    if (at + 16 + size > length) return;  // malformed block: JS bug; stop here
    const uint8_t* payload = c + 16;
    at += 16 + size;
    Conn* conn = lookup(slot, generation);  // stale generation → ignored
    if (!conn) continue;
    switch (op) {
      case kOpWrite:
        if (flags & 1) conn->wantDrain = true;
        if (size > 0) send(*conn, payload, size);
        else updateWater(*conn);
        break;
      case kOpEnd:
        endConn(*conn);
        break;
      case kOpDestroy:
        closeNow(*conn, kEDESTROYED, "");
        break;
      case kOpClose:
        if (code >= kErrorCount) code = kEIO;
        closeAfterFlush(*conn, code, reasonFor(code, payload, size), config_.framing == Framing::Frame);
        break;
      default:
        applyTopicCommand(*conn, op, payload, size);  // fanout.cc
        break;
    }
  }
}

}  // namespace edgepoll
