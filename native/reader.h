// The read path of one loop's connections: read with a budget per wake-up
// (the again list remembers what a pause left unread, a FIN included), the
// PROXY header before anything else, the decoder, and the records for JS (or
// the native echo, the answer to a PING, the peer's CLOSE and FIN).
// Owns: the loop's one receive buffer and the again list. Does not own: the
// connections (SlotTable), the batch (Handoff), the outboxes (Writer).
// Runs on: the loop thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "conn.h"

namespace edgepoll {

class Loop;

class Reader {
 public:
  explicit Reader(Loop& loop) : loop_(loop) {}
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  void init(size_t bufferSize) { buffer_.resize(bufferSize); }
  // Reads until EAGAIN, EOF, the budget or a pause (credit, water, full ring).
  void read(Conn& conn);
  // Reads and drops what a closing peer still sends: closing a socket with
  // unread bytes sends RST, and RST makes the peer discard our CLOSE frame.
  void drainClosing(Conn& conn);
  // Reads held back by a pause or the budget are served next iteration.
  void queueAgain(Conn& conn);
  void serveAgain();
  bool hasAgain() const { return !again_.empty(); }
  // One decoded message (the decoder's sink). false: stop feeding.
  bool onMessage(Conn& conn, const Message& message);
  // OPEN; `tls`: the PROXY header's TLS details, after the address in the slab (flags bit 0).
  void announce(Conn& conn, const std::string& address, uint32_t port, const ProxyTls* tls = nullptr);
  // A PROXY header failed (malformed, late, cut by a FIN): a counted abort, no records.
  void abortProxy(Conn& conn, uint16_t code);

 private:
  void deliver(Conn& conn, const uint8_t* data, size_t length);
  void deliverProxy(Conn& conn, const uint8_t* data, size_t length);
  void onPeerEnd(Conn& conn);

  Loop& loop_;
  std::vector<uint8_t> buffer_;
  std::vector<uint32_t> again_;  // read budget spent or reads held back: served next iteration
};

}  // namespace edgepoll
