// Inbox (see inbox.h): the JS side pushes, the loop applies. Topic commands
// and publishes are in fanout.cc.
#include "inbox.h"

#include <cstring>

#include "loop.h"

namespace edgepoll {

namespace {
uint16_t le16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
uint32_t le32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
}  // namespace

Inbox::~Inbox() {
  InboxBlock* block;
  while (ring_.pop(block)) delete block;
}

void Inbox::push(InboxBlock* block, size_t bytes) {
  bytes_ += bytes;
  ring_.push(block);  // cannot fail: hasRoom() and we are the only producer
  loop_.wakeIfSleeping();
}

bool Inbox::submit(const uint8_t* bytes, size_t length) {
  if (!hasRoom()) return false;
  auto* block = new InboxBlock();
  block->commands.assign(bytes, bytes + length);
  push(block, length);
  return true;
}

void Inbox::pushBroadcast(const SharedBytes& bytes) {
  auto* block = new InboxBlock();
  block->broadcast = bytes;
  push(block, bytes->size());
}

void Inbox::apply() {
  // Outbox bytes broadcasts may add before this iteration's flush: a full
  // inbox of broadcasts (64 MiB) fanned out to thousands of receivers before
  // one flush would queue gigabytes. What is left waits in the inbox (Loop::run
  // does not sleep on a non-empty inbox), so JS sees it full: backpressure.
  size_t fanout = 0;
  size_t fanoutLimit = loop_.config_.bounds.broadcastFanout;
  InboxBlock* block;
  while (fanout < fanoutLimit && ring_.pop(block)) {
    if (block->broadcast) fanout += block->broadcast->size() * (size_t(loop_.stats_.connections.load()) + 1);
    if (block->publish) {
      applyPublish(*block);  // at most every connection here, counted as a broadcast
    } else if (block->broadcast) {
      bytes_ -= block->broadcast->size();
      // sendShared may close a slow consumer; the live list only changes in Loop::freeClosed.
      for (uint32_t slot : loop_.slots_.live()) {
        Conn& conn = loop_.slots_[slot];
        if (conn.state == ConnState::Open && !conn.proxy) loop_.writer_.sendShared(conn, block->broadcast);
      }
    } else {
      bytes_ -= block->commands.size();
      applyCommands(block->commands.data(), block->commands.size());
    }
    delete block;
  }
}

void Inbox::applyCommands(const uint8_t* bytes, size_t length) {
  Writer& writer = loop_.writer_;
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
    Conn* conn = loop_.slots_.lookup(slot, generation);  // stale generation → ignored
    if (!conn) continue;
    switch (op) {
      case kOpWrite:
        if (flags & 1) conn->wantDrain = true;
        if (size > 0) writer.send(*conn, payload, size);
        else writer.updateWater(*conn);
        break;
      case kOpEnd:
        writer.end(*conn);
        break;
      case kOpDestroy:
        loop_.closeNow(*conn, kEDESTROYED, "");
        break;
      case kOpClose:
        if (code >= kErrorCount) code = kEIO;
        loop_.closeAfterFlush(*conn, code, reasonFor(code, payload, size), loop_.config_.framing == Framing::Frame);
        break;
      default:
        applyTopicCommand(*conn, op, payload, size);  // fanout.cc
        break;
    }
  }
}

}  // namespace edgepoll
