// Reader (see reader.h): read → PROXY header → decode → records. Loop thread.
#include "reader.h"

#include <cstring>
#include <memory>

#include "loop.h"
#include "sys.h"

namespace edgepoll {

namespace {
// Feeds decoded messages of one connection back to the reader.
class ConnSink final : public MessageSink {
 public:
  ConnSink(Reader& reader, Conn& conn) : reader_(reader), conn_(conn) {}
  bool onMessage(const Message& message) override { return reader_.onMessage(conn_, message); }

 private:
  Reader& reader_;
  Conn& conn_;
};
}  // namespace

void Reader::queueAgain(Conn& conn) {
  if (conn.queued) return;
  conn.queued = true;
  again_.push_back(conn.slot);
  loop_.setInterest(conn);
}

void Reader::serveAgain() {
  if (again_.empty() || loop_.handoff_.blocked()) return;
  std::vector<uint32_t> list;
  list.swap(again_);
  for (uint32_t slot : list) {
    Conn* queued = loop_.slots_.find(slot);  // null: closed and released since it was queued
    if (!queued || !queued->queued) continue;
    Conn& conn = *queued;
    conn.queued = false;
    if (conn.state != ConnState::Open) continue;
    Sweeper::resumeClock(conn, loop_.now_);  // held back by us, not silent
    loop_.setInterest(conn);
    read(conn);
  }
  if (again_.empty()) again_.swap(list), again_.clear();
}

void Reader::drainClosing(Conn& conn) {
  for (int i = 0; i < 4 && readSome(conn.fd, buffer_.data(), buffer_.size()) > 0; i++) {
  }
}

void Reader::read(Conn& conn) {
  if (conn.state != ConnState::Open || conn.peerEnded || conn.readPaused || conn.creditPaused) return;
  Handoff& handoff = loop_.handoff_;
  size_t budget = loop_.config_.bounds.readBudget;
  for (;;) {
    if (conn.toJs >= handoff.window()) return handoff.pauseForCredit(conn);
    // The edge will not fire again for bytes we leave unread: remember them.
    if (handoff.blocked() || budget == 0) return queueAgain(conn);
    ssize_t n = readSome(conn.fd, buffer_.data(), buffer_.size());
    if (n > 0) {
      loop_.stats_.bytesIn += uint64_t(n);
      conn.lastRead = loop_.now_;
      budget -= size_t(n) < budget ? size_t(n) : budget;
      deliver(conn, buffer_.data(), size_t(n));
      if (conn.state != ConnState::Open || conn.readPaused) return;
      // A short read drained the socket: new bytes raise a new edge. But once
      // the peer hung up no edge comes again (whatever pause consumed the
      // one that said so), so then only EAGAIN or EOF ends the read.
      if (size_t(n) < buffer_.size() && !conn.peerHungUp) return;
      continue;
    }
    if (n == 0) return onPeerEnd(conn);
    if (n == -EAGAIN || n == -EWOULDBLOCK) return;
    return loop_.closeNow(conn, errnoCode(int(-n)), "");
  }
}

void Reader::deliver(Conn& conn, const uint8_t* data, size_t length) {
  if (conn.proxy) return deliverProxy(conn, data, length);
  const LoopConfig& config = loop_.config_;
  if (!conn.decoder) {
    if (config.nativeEcho) return loop_.writer_.send(conn, data, length);
    loop_.handoff_.record(Handoff::recordFor(conn, kRecordData), data, length);
    return;
  }
  ConnSink sink(*this, conn);
  ErrorCode error = conn.decoder->feed(data, length, sink);
  if (conn.state != ConnState::Open) return;
  if (error != kOK) {
    loop_.stats_.protocolErrors++;
    return loop_.closeAfterFlush(conn, error, closeReason(error), config.framing == Framing::Frame);
  }
  if (conn.decoder->midMessage()) {
    if (conn.messageStart == 0) conn.messageStart = loop_.now_;
  } else {
    conn.messageStart = 0;
    conn.decoder->shrink();
  }
}

bool Reader::onMessage(Conn& conn, const Message& message) {
  if (conn.state != ConnState::Open) return false;
  const LoopConfig& config = loop_.config_;
  Writer& writer = loop_.writer_;
  if (config.framing == Framing::Frame) {
    if (message.type >= kControlFirst) {
      if (message.type == kTypePing) {
        writer.sendFrame(conn, 0, kTypePong, message.seq, message.data, message.length);
        return conn.state == ConnState::Open;
      }
      if (message.type == kTypeClose) {
        // The peer is closing: flush what was queued, close, report its reason.
        loop_.closeAfterFlush(conn, kECLOSED_BY_PEER,
                              std::string(reinterpret_cast<const char*>(message.data), message.length), false);
        return false;
      }
      return true;  // PONG: any byte was life already
    }
    if (config.nativeEcho && message.type == 1 && message.seq != 0 && !(message.flags & kFlagResponse)) {
      writer.sendFrame(conn, kFlagResponse, message.type, message.seq, message.data, message.length);
      return conn.state == ConnState::Open;
    }
    Record r = Handoff::recordFor(conn, kRecordMessage);
    r.flags = message.flags;
    r.type = message.type;
    r.seq = message.seq;
    loop_.handoff_.record(r, message.data, message.length);
    return true;
  }
  if (config.nativeEcho) {
    // Echo in the same framing.
    if (config.framing == Framing::Length) {
      uint8_t prefix[4];
      putU32(prefix, message.length);
      writer.send(conn, prefix, 4);
      writer.send(conn, message.data, message.length);
    } else {
      writer.send(conn, message.data, message.length);
      writer.send(conn, reinterpret_cast<const uint8_t*>("\n"), 1);
    }
    return conn.state == ConnState::Open;
  }
  loop_.handoff_.record(Handoff::recordFor(conn, kRecordData), message.data, message.length);
  return true;
}

void Reader::onPeerEnd(Conn& conn) {
  if (conn.proxy) {
    // A plain connect-close (a load balancer's TCP check) is not an error;
    // a FIN inside a header is (spec: reject partial headers).
    if (conn.proxy->parser.received() == 0) return loop_.closeNow(conn, kOK, "");
    return abortProxy(conn, kEPROXY_HEADER);
  }
  conn.peerEnded = true;
  conn.messageStart = 0;
  loop_.handoff_.record(Handoff::recordFor(conn, kRecordEnd), nullptr, 0);
  // allowHalfOpen=false: JS answers END with an END command after the writes
  // it made for the data before the FIN, so nothing it sends is cut off.
  if (conn.finSent) return loop_.closeNow(conn, kOK, "");
  loop_.setInterest(conn);
}

void Reader::deliverProxy(Conn& conn, const uint8_t* data, size_t length) {
  ProxyResult result = conn.proxy->parser.feed(data, length);
  if (result.status == ProxyStatus::NeedMore) return;
  if (result.status == ProxyStatus::Error) return abortProxy(conn, kEPROXY_HEADER);
  std::unique_ptr<ProxyPending> pending = std::move(conn.proxy);
  const ProxyParser& parser = pending->parser;
  if (parser.hasAddress()) announce(conn, parser.sourceAddress(), parser.sourcePort(), parser.tls());
  else announce(conn, pending->peerAddress, pending->peerPort, parser.tls());
  conn.lastRead = loop_.now_;  // heartbeat and idle time start with the application's first byte
  // Bytes after the header in the same read are protocol data.
  if (result.consumed < length && conn.state == ConnState::Open) deliver(conn, data + result.consumed, length - result.consumed);
}

void Reader::announce(Conn& conn, const std::string& address, uint32_t port, const ProxyTls* tls) {
  conn.announced = true;
  Record open = Handoff::recordFor(conn, kRecordOpen);
  open.value = port;
  Handoff& handoff = loop_.handoff_;
  if (tls == nullptr) return handoff.record(open, reinterpret_cast<const uint8_t*>(address.data()), address.size());
  open.flags = 1;
  open.seq = uint32_t(address.size());  // where the address ends and the TLS details begin
  std::string slab = address;
  appendProxyTls(*tls, &slab);
  handoff.record(open, reinterpret_cast<const uint8_t*>(slab.data()), slab.size());
}

void Reader::abortProxy(Conn& conn, uint16_t code) {
  // The peer is a proxy, not an edgepoll client: no CLOSE frame, no records
  // (JS never saw this connection), just a counted abort.
  loop_.stats_.proxyErrors++;
  loop_.stats_.protocolErrors++;
  loop_.closeNow(conn, code, "");
}

}  // namespace edgepoll
