// Splits a connection's byte stream into messages for one framing and
// validates them (docs/PROTOCOL.md sections 1-2).
// Owns: the partial-message buffer of one connection and its share of the
// loop's input budget. Does not own: the socket, the reply to PING (the
// connection does that with what it is given), the budget itself (the loop).
// Runs on: the loop thread that owns the connection; also in fuzz targets and
// the test probe. No Node-API, no syscalls.
#pragma once
#include <cstddef>
#include <cstdint>

#include "errors.h"
#include "protocol.h"

namespace edgepoll {

// Who is decoding: a server decodes what clients send (GOAWAY from a client is
// a protocol error); a client decodes what servers send.
enum class Role : uint8_t { Server = 0, Client = 1 };

struct Message {
  uint8_t flags = 0;
  uint16_t type = 0;  // frame framing only; 0 otherwise
  uint32_t seq = 0;
  const uint8_t* data = nullptr;  // valid only during onMessage
  uint32_t length = 0;
};

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // Every complete message, control frames included (already validated).
  // Return false to stop this feed: the remaining bytes are dropped (the
  // connection is closing, e.g. after the peer's CLOSE).
  virtual bool onMessage(const Message& message) = 0;
};

// Bytes every decoder of one loop may hold for partial messages together.
// A header may announce maxFrame, but only the bytes that arrived are held,
// so 10,000 peers each announcing 1 MiB and sending one byte cost kilobytes,
// and peers that do send that much hit this cap (ENOMEM for the one that
// asked) instead of the machine. One owner thread, no atomics.
struct InputBudget {
  size_t used = 0;
  size_t limit = SIZE_MAX;
};

class Decoder {
 public:
  // `budget` (may be null: unlimited) must outlive the decoder.
  Decoder(Framing framing, uint32_t maxFrame, Role role, InputBudget* budget = nullptr);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Decodes `len` bytes. Whole messages inside `data` are passed without a
  // copy; a message split across feeds is assembled in an internal buffer.
  // Header fields are checked as soon as their bytes arrive (magic at byte 0,
  // flags at byte 1, type at bytes 2-3, length at bytes 4-7), so an oversized
  // length is refused before any payload is buffered.
  // Returns kOK, or the protocol error, or kENOMEM when the partial buffer
  // could not grow (allocation failed or the budget is spent); after an error
  // feed() returns it again and delivers nothing more.
  ErrorCode feed(const uint8_t* data, size_t len, MessageSink& sink);

  // A message has begun and is not complete (the frame timeout runs).
  bool midMessage() const;
  // Bytes held for a partial message.
  size_t bufferedBytes() const { return size_; }
  // Bytes of memory held for it (what the budget is charged).
  size_t capacity() const { return capacity_; }
  // Gives back the partial buffer's memory when it is empty (idle connections hold none).
  void shrink();

 private:
  Framing framing_;
  uint32_t maxFrame_;
  Role role_;
  ErrorCode error_ = kOK;
  InputBudget* budget_;
  // Payload (frame, length) or line bytes of a message split across feeds.
  // malloc/realloc, not std::vector: the build has no exceptions, so a failed
  // vector growth would abort the process; here it closes one connection.
  uint8_t* partial_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  uint32_t need_ = 0;             // payload length announced by the header in header_
  bool inMessage_ = false;
  bool sawCarriageReturn_ = false;
  // Private helpers and state of codec.cc (not part of the API).
  uint8_t header_[kHeaderSize] = {};  // header bytes of the message in progress
  uint8_t headerHave_ = 0;            // how many of them arrived
  ErrorCode fail(ErrorCode code);
  bool append(const uint8_t* data, size_t length, size_t ceiling);
  void release();
  ErrorCode feedHeadered(const uint8_t* data, size_t len, MessageSink& sink, size_t headerSize);
  ErrorCode feedLine(const uint8_t* data, size_t len, MessageSink& sink);
  ErrorCode checkHeader(const uint8_t* header, size_t have) const;
  bool deliver(const uint8_t* header, const uint8_t* payload, uint32_t length, MessageSink& sink);
};

}  // namespace edgepoll
