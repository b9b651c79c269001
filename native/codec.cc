// Splits one connection's byte stream into messages (frame, length, line, raw)
// and validates frame headers byte by byte (docs/PROTOCOL.md sections 1-2).
// Owns: the partial-message state of one connection. Does not own: the socket,
// PONG replies, close reasons (the connection acts on what it is given).
// Runs on: the loop thread that owns the connection; also in fuzz targets and
// the test probe. No Node-API, no syscalls, never throws on peer input.
// src/protocol/codec.ts implements the same behaviour in TypeScript; the differential
// test keeps the two in step, so change both together.
#include "codec.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace edgepoll {

namespace {
constexpr size_t kLengthPrefixSize = 4;
constexpr size_t kFirstPartial = 256;  // the first growth; doubling after it keeps copies O(n)
}  // namespace

Decoder::Decoder(Framing framing, uint32_t maxFrame, Role role, InputBudget* budget)
    : framing_(framing), maxFrame_(maxFrame), role_(role), budget_(budget) {}

Decoder::~Decoder() { release(); }

void Decoder::release() {
  std::free(partial_);
  if (budget_) budget_->used -= capacity_;
  partial_ = nullptr;
  size_ = 0;
  capacity_ = 0;
}

// Appends bytes that arrived, growing by doubling but never past `ceiling`
// (the announced length, or the line limit): memory follows what the peer
// sent, not what its header promised. false = out of memory or budget.
bool Decoder::append(const uint8_t* data, size_t length, size_t ceiling) {
  // A header that ends exactly at the end of a read appends nothing, maybe
  // before any buffer exists: memcpy from/to null is undefined even for 0 bytes.
  if (length == 0) return true;
  size_t want = size_ + length;
  if (want > capacity_) {
    size_t grown = std::max(capacity_ * 2, kFirstPartial);
    grown = std::max(want, std::min(grown, ceiling));
    size_t extra = grown - capacity_;
    if (budget_ && (budget_->used > budget_->limit || extra > budget_->limit - budget_->used)) return false;
    auto* bigger = static_cast<uint8_t*>(std::realloc(partial_, grown));
    if (bigger == nullptr) return false;
    partial_ = bigger;
    capacity_ = grown;
    if (budget_) budget_->used += extra;
  }
  std::memcpy(partial_ + size_, data, length);
  size_ = want;
  return true;
}

ErrorCode Decoder::feed(const uint8_t* data, size_t len, MessageSink& sink) {
  if (error_ != kOK) return error_;
  if (len == 0) return kOK;
  switch (framing_) {
    case Framing::Frame:
      return feedHeadered(data, len, sink, kHeaderSize);
    case Framing::Length:
      return feedHeadered(data, len, sink, kLengthPrefixSize);
    case Framing::Line:
      return feedLine(data, len, sink);
    case Framing::Raw: {
      Message message;
      message.data = data;
      // A raw chunk larger than 4 GiB cannot come from one read; clamp for safety.
      message.length = uint32_t(std::min<size_t>(len, UINT32_MAX));
      sink.onMessage(message);
      return kOK;
    }
  }
  return kOK;
}

bool Decoder::midMessage() const {
  if (error_ != kOK) return false;
  switch (framing_) {
    case Framing::Frame:
    case Framing::Length:
      return headerHave_ > 0;
    case Framing::Line:
      return size_ > 0;
    case Framing::Raw:
      return false;
  }
  return false;
}

void Decoder::shrink() {
  if (size_ == 0 && capacity_ > 0) release();
}

// Records the first error; the partial message is dropped with its memory,
// because nothing of this connection is delivered any more.
ErrorCode Decoder::fail(ErrorCode code) {
  error_ = code;
  headerHave_ = 0;
  need_ = 0;
  release();
  return code;
}

// Checks every header field whose bytes are all among the first `have` bytes,
// in wire order, so the first bad field wins however the stream was split.
ErrorCode Decoder::checkHeader(const uint8_t* header, size_t have) const {
  if (framing_ == Framing::Length) {
    if (have >= kLengthPrefixSize && getU32(header) > maxFrame_) return kEFRAME_TOO_LARGE;
    return kOK;
  }
  if (have >= 1 && header[0] != kMagic) return kEBAD_MAGIC;
  if (have >= 2 && (header[1] & kReservedFlags) != 0) return kEBAD_FLAGS;
  if (have < 4) return kOK;
  uint16_t type = getU16(header + 2);
  if (type == 0) return kEBAD_TYPE;
  if (type >= kControlFirst) {
    if (type == kControlFirst || type > kTypeGoaway) return kEUNKNOWN_CONTROL;
    if (type == kTypeGoaway && role_ == Role::Server) return kEUNEXPECTED_GOAWAY;
  }
  if (have < 8) return kOK;
  uint32_t length = getU32(header + 4);
  if (type == kTypePing && length > kMaxPingPayload) return kEPING_TOO_LARGE;
  if (length > maxFrame_) return kEFRAME_TOO_LARGE;
  return kOK;
}

bool Decoder::deliver(const uint8_t* header, const uint8_t* payload, uint32_t length, MessageSink& sink) {
  Message message;
  if (framing_ == Framing::Frame) {
    message.flags = header[1];
    message.type = getU16(header + 2);
    message.seq = getU32(header + 8);
  }
  message.data = payload;
  message.length = length;
  return sink.onMessage(message);
}

// Frame and length framings: a fixed header whose last length field announces
// the payload. Whole messages inside the chunk are delivered in place.
ErrorCode Decoder::feedHeadered(const uint8_t* data, size_t len, MessageSink& sink, size_t headerSize) {
  // The frame's length field is at byte 4; the length framing's prefix is the whole header.
  const size_t lengthOffset = headerSize == kHeaderSize ? 4 : 0;
  size_t pos = 0;
  while (pos < len) {
    size_t left = len - pos;
    if (headerHave_ == 0 && left >= headerSize) {
      // Fast path: the whole header is in the chunk.
      const uint8_t* header = data + pos;
      ErrorCode code = checkHeader(header, headerSize);
      if (code != kOK) return fail(code);
      uint32_t length = getU32(header + lengthOffset);
      if (left - headerSize >= length) {
        pos += headerSize + length;
        if (!deliver(header, header + headerSize, length, sink)) return kOK;
        continue;
      }
      // The payload continues in a later feed: fall through to the slow path.
    }
    if (headerHave_ < headerSize) {
      size_t take = std::min(headerSize - headerHave_, left);
      std::memcpy(header_ + headerHave_, data + pos, take);
      headerHave_ = uint8_t(headerHave_ + take);
      pos += take;
      ErrorCode code = checkHeader(header_, headerHave_);
      if (code != kOK) return fail(code);
      if (headerHave_ < headerSize) return kOK;  // pos == len
      need_ = getU32(header_ + lengthOffset);
      left = len - pos;
      if (left >= need_) {
        // The header was split but the payload is whole in this chunk.
        uint32_t length = need_;
        headerHave_ = 0;
        need_ = 0;
        pos += length;
        if (!deliver(header_, data + pos - length, length, sink)) return kOK;
        continue;
      }
    }
    size_t take = std::min<size_t>(need_ - size_, len - pos);
    if (!append(data + pos, take, need_)) return fail(kENOMEM);
    pos += take;
    if (size_ < need_) return kOK;
    uint32_t length = need_;
    headerHave_ = 0;
    need_ = 0;
    bool more = deliver(header_, partial_, length, sink);
    size_ = 0;  // keeps capacity for the next split message; shrink() frees it
    if (!more) return kOK;
  }
  return kOK;
}

// Line framing: bytes up to '\n', one '\r' directly before it stripped. A line
// longer than maxFrame fails once more than maxFrame + 1 bytes (room for the
// '\r') are held without a '\n', so at most maxFrame + 1 bytes are buffered.
ErrorCode Decoder::feedLine(const uint8_t* data, size_t len, MessageSink& sink) {
  const size_t limit = size_t(maxFrame_) + 1;
  size_t pos = 0;
  while (pos < len) {
    const uint8_t* start = data + pos;
    size_t left = len - pos;
    const uint8_t* newline = static_cast<const uint8_t*>(std::memchr(start, '\n', left));
    if (newline == nullptr) {
      if (size_ + left > limit) return fail(kEFRAME_TOO_LARGE);
      if (!append(start, left, limit)) return fail(kENOMEM);
      return kOK;
    }
    size_t take = size_t(newline - start);
    pos += take + 1;
    Message message;
    if (size_ == 0) {
      size_t length = take;
      if (length > 0 && start[length - 1] == '\r') length--;
      if (length > maxFrame_) return fail(kEFRAME_TOO_LARGE);
      message.data = start;
      message.length = uint32_t(length);
      if (!sink.onMessage(message)) return kOK;
      continue;
    }
    if (size_ + take > limit) return fail(kEFRAME_TOO_LARGE);
    if (!append(start, take, limit)) return fail(kENOMEM);
    size_t length = size_;
    if (partial_[length - 1] == '\r') length--;
    if (length > maxFrame_) return fail(kEFRAME_TOO_LARGE);
    message.data = partial_;
    message.length = uint32_t(length);
    bool more = sink.onMessage(message);
    size_ = 0;
    if (!more) return kOK;
  }
  return kOK;
}

}  // namespace edgepoll
