// Splits a connection's byte stream into messages for one framing and
// validates them (../shared/PROTOCOL.md sections 1-2).
// Owns: the partial-message buffer of one connection. Does not own: the
// socket, the reply to PING (the connection does that with what it is given).
// Runs on: the loop thread that owns the connection; also in fuzz targets and
// the test probe. No Node-API, no syscalls.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

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

class Decoder {
 public:
  Decoder(Framing framing, uint32_t maxFrame, Role role);

  // Decodes `len` bytes. Whole messages inside `data` are passed without a
  // copy; a message split across feeds is assembled in an internal buffer.
  // Header fields are checked as soon as their bytes arrive (magic at byte 0,
  // flags at byte 1, type at bytes 2-3, length at bytes 4-7), so an oversized
  // length is refused before any payload is buffered.
  // Returns kOK, or the protocol error; after an error feed() returns it again
  // and delivers nothing more.
  ErrorCode feed(const uint8_t* data, size_t len, MessageSink& sink);

  // A message has begun and is not complete (the frame timeout runs).
  bool midMessage() const;
  // Bytes held for a partial message.
  size_t bufferedBytes() const { return partial_.size(); }
  // Gives back the partial buffer's memory when it is empty (idle connections hold none).
  void shrink();

 private:
  Framing framing_;
  uint32_t maxFrame_;
  Role role_;
  ErrorCode error_ = kOK;
  std::vector<uint8_t> partial_;  // payload (frame, length) or line bytes of a message split across feeds
  uint32_t need_ = 0;             // payload length announced by the header in header_
  bool inMessage_ = false;
  bool sawCarriageReturn_ = false;
  // Private helpers and state of codec.cc (not part of the API).
  uint8_t header_[kHeaderSize] = {};  // header bytes of the message in progress
  uint8_t headerHave_ = 0;            // how many of them arrived
  ErrorCode fail(ErrorCode code);
  ErrorCode feedHeadered(const uint8_t* data, size_t len, MessageSink& sink, size_t headerSize);
  ErrorCode feedLine(const uint8_t* data, size_t len, MessageSink& sink);
  ErrorCode checkHeader(const uint8_t* header, size_t have) const;
  bool deliver(const uint8_t* header, const uint8_t* payload, uint32_t length, MessageSink& sink);
};

}  // namespace edgepoll
