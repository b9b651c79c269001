// The read path of a load-generator worker: read until the socket is drained,
// split frames (or the raw stream), match every reply to its request by seq,
// check its bytes, and record its latency. Runs on the worker thread only.
// Owns nothing beyond LoadWorker's state (worker.h).
#include <errno.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "../protocol.h"
#include "worker.h"

namespace edgepoll {

void LoadWorker::onReadable(LoadConn& c, uint64_t now) {
  uint8_t* scratch = scratch_.data();
  for (;;) {
    // An incomplete frame from the last read goes first; a frame always fits
    // (scratch holds two maximal frames), so this never loops without progress.
    size_t have = c.in.size();
    if (have) memcpy(scratch, c.in.data(), have);
    size_t room = scratch_.size() - have;
    ssize_t n = ::read(c.fd, scratch + have, room);
    if (n > 0) {
      if (recording()) counters_.bytesReceived.add(uint64_t(n));
      size_t total = have + size_t(n);
      uint32_t generation = c.generation;
      size_t used = options_.rawFraming ? parseRaw(c, scratch, total, now) : parseFrames(c, scratch, total, now);
      if (c.generation != generation || c.state != LoadConnState::Open) return;
      c.in.assign(scratch + used, scratch + total);
      // A short read drained the receive queue; with EPOLLET the next arrival
      // raises a new edge, so the extra read() that would see EAGAIN is saved.
      if (size_t(n) < room) break;
      continue;
    }
    if (n == 0) {
      fail(c, "connection closed by the server", 0, now);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    fail(c, "read", errno, now);
    return;
  }
  refill(c, now);
}

size_t LoadWorker::parseRaw(LoadConn& c, const uint8_t* data, size_t size, uint64_t now) {
  for (size_t i = 0; i < size; i++) {
    if (data[i] != loadPattern(c.rawReceived + i)) {
      // A raw stream cannot resynchronise: count once and start over.
      counters_.mismatches.add();
      fail(c, "raw echo differs from what was sent", 0, now);
      return size;
    }
  }
  c.rawReceived += size;
  if (c.rawReceived > c.rawSent) {
    counters_.mismatches.add();
    fail(c, "raw echo longer than what was sent", 0, now);
    return size;
  }
  // In-flight keys are stream end offsets, oldest first.
  uint32_t capacity = uint32_t(c.inFlight.size());
  while (c.inFlightCount > 0 && c.inFlight[c.inFlightHead].key <= c.rawReceived) {
    if (recording()) {
      counters_.messages.add();
      histogram_.record(now - c.inFlight[c.inFlightHead].sentNs);
    }
    c.inFlightHead = (c.inFlightHead + 1) % capacity;
    c.inFlightCount--;
  }
  return size;
}

size_t LoadWorker::parseFrames(LoadConn& c, const uint8_t* data, size_t size, uint64_t now) {
  size_t position = 0;
  const size_t largest = scratch_.size() / 2 - kHeaderSize;
  while (size - position >= kHeaderSize) {
    const uint8_t* frame = data + position;
    uint32_t length = getU32(frame + 4);
    if (frame[0] != kMagic || length > largest) {
      counters_.mismatches.add();
      fail(c, frame[0] != kMagic ? "reply with bad magic" : "reply larger than any request", 0, now);
      return position;
    }
    if (size - position < kHeaderSize + length) break;
    if (!onFrame(c, frame, now)) return position;
    position += kHeaderSize + length;
  }
  return position;
}

bool LoadWorker::popInFlight(LoadConn& c, uint64_t key, uint64_t* sentNs) {
  uint32_t capacity = uint32_t(c.inFlight.size());
  for (uint32_t i = 0; i < c.inFlightCount; i++) {
    uint32_t slot = (c.inFlightHead + i) % capacity;
    if (c.inFlight[slot].key != key) continue;
    *sentNs = c.inFlight[slot].sentNs;
    // Usually the oldest (replies in order); otherwise close the gap.
    for (uint32_t j = i; j > 0; j--) {
      c.inFlight[(c.inFlightHead + j) % capacity] = c.inFlight[(c.inFlightHead + j - 1) % capacity];
    }
    c.inFlightHead = (c.inFlightHead + 1) % capacity;
    c.inFlightCount--;
    return true;
  }
  return false;
}

bool LoadWorker::onFrame(LoadConn& c, const uint8_t* frame, uint64_t now) {
  uint8_t flags = frame[1];
  uint16_t type = getU16(frame + 2);
  uint32_t length = getU32(frame + 4);
  uint32_t seq = getU32(frame + 8);
  const uint8_t* payload = frame + kHeaderSize;
  if (type >= kControlFirst) {
    if (type == kTypePing) {
      // A server heartbeat: answer it like any client would.
      size_t offset = c.out.size();
      c.out.insert(c.out.end(), frame, frame + kHeaderSize + length);
      putU16(c.out.data() + offset + 2, kTypePong);
      return true;
    }
    if (type == kTypePong && options_.mode == LoadMode::Broadcast && seq != 0 && seq == c.pingSeq) {
      c.pingSeq = 0;  // the server has this connection (see onOpen)
      counters_.open.add();
      refill(c, now);
      return true;
    }
    if (type == kTypePong && options_.mode == LoadMode::Idle && seq != 0 && seq == c.pingSeq) {
      uint32_t expected = options_.payload < kMaxPingPayload ? options_.payload : kMaxPingPayload;
      bool ok = length == expected && flags == 0;
      for (uint32_t i = 0; ok && i < length; i++) {
        uint8_t want = i < 4 && length >= 4 ? uint8_t(seq >> (24 - 8 * i)) : loadPattern(i);
        ok = payload[i] == want;
      }
      c.pingSeq = 0;
      if (!ok) {
        counters_.mismatches.add();
        noteError("PONG payload differs from the PING", 0);
      } else if (recording()) {
        counters_.messages.add();
        histogram_.record(now - c.pingSentNs);
      }
      return true;
    }
    if (type == kTypeClose || type == kTypeGoaway) {
      counters_.serverCloses.add();
      std::string what = type == kTypeClose ? "CLOSE from the server: " : "GOAWAY from the server";
      if (type == kTypeClose) what.append(reinterpret_cast<const char*>(payload), length > 200 ? 200 : length);
      fail(c, what.c_str(), 0, now);
      return false;
    }
    counters_.mismatches.add();
    noteError("unexpected control frame", 0);
    return true;
  }
  if (seq == 0) {
    // A push: in broadcast mode, one delivery.
    bool ok = options_.mode == LoadMode::Broadcast && type == 2 && !(flags & kFlagResponse) && length == options_.payload;
    for (uint32_t i = 8; ok && i < length; i++) ok = payload[i] == loadPattern(i);
    if (!ok) {
      counters_.mismatches.add();
      noteError("unexpected push", 0);
      return true;
    }
    counters_.pushesTotal.add();
    if (recording()) {
      counters_.messages.add();
      if (length >= 8) {
        uint64_t stamp;
        memcpy(&stamp, payload, 8);
        if (stamp <= now) histogram_.record(now - stamp);
      }
    }
    return true;
  }
  if (!(flags & kFlagResponse)) {
    counters_.mismatches.add();
    noteError("request from the server", 0);
    return true;
  }
  return checkReply(c, flags, type, seq, payload, length, now);
}

bool LoadWorker::checkReply(LoadConn& c, uint8_t flags, uint16_t type, uint32_t seq, const uint8_t* payload,
                            uint32_t length, uint64_t now) {
  uint64_t sentNs = 0;
  if (c.inFlight.empty() || !popInFlight(c, seq, &sentNs)) {
    counters_.mismatches.add();
    noteError("reply with a seq that matches no request", 0);
    return true;
  }
  bool ok;
  if (flags & kFlagError) {
    counters_.errors.add();
    std::string what = "ERROR reply: ";
    what.append(reinterpret_cast<const char*>(payload), length > 200 ? 200 : length);
    noteError(what.c_str(), 0);
    ok = false;
  } else if (options_.mode == LoadMode::Broadcast) {
    ok = type == 2 && flags == kFlagResponse && length == 0;
    if (!ok) counters_.mismatches.add();
    if (ok && recording()) counters_.broadcasts.add();
  } else {
    uint32_t size = options_.payload;
    ok = type == options_.requestType && flags == kFlagResponse && length == size;
    if (ok && size >= 4) {
      ok = getU32(payload) == seq && memcmp(payload + 4, request_.data() + kHeaderSize + 4, size - 4) == 0;
    } else if (ok) {
      ok = memcmp(payload, request_.data() + kHeaderSize, size) == 0;
    }
    if (!ok) {
      counters_.mismatches.add();
      noteError("reply differs from the request (type, length, seq or payload)", 0);
    } else if (recording()) {
      counters_.messages.add();
      histogram_.record(now - (options_.mode == LoadMode::Churn ? c.startNs : sentNs));
    }
  }
  if (options_.mode == LoadMode::Churn) {
    // One cycle done: close and connect again at once.
    close(c);
    if (phase_ != LoadPhase::Stop) connect(c, now);
    return false;
  }
  return true;
}

}  // namespace edgepoll
