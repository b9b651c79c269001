// Shared pieces of the Node-free native test programs (tsan_harness.cc,
// sigpipe_test.cc): a blocking loopback client that speaks the frame
// protocol, command encoding (docs/internals.md) and failure reporting.
// Owns: nothing beyond each Client's fd. Does not own: the engine under test.
// Runs on: whichever harness thread calls it (a Client belongs to one thread).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../protocol.h"

namespace edgepoll {
namespace test {

inline std::atomic<int>& failures() {
  static std::atomic<int> count{0};
  return count;
}

// Records a failed check; the program exits non-zero at the end.
inline void fail(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::fprintf(stderr, "FAIL: ");
  std::vfprintf(stderr, format, args);
  std::fprintf(stderr, "\n");
  va_end(args);
  failures()++;
}

// One command for a loop's inbox (docs/internals.md "Commands").
inline void appendCommand(std::vector<uint8_t>& out, uint8_t op, uint8_t flags, uint16_t code, uint32_t slot,
                          uint32_t generation, const uint8_t* bytes, uint32_t length) {
  size_t at = out.size();
  out.resize(at + 16 + length);
  uint8_t* c = out.data() + at;
  c[0] = op;
  c[1] = flags;
  std::memcpy(c + 2, &code, 2);
  std::memcpy(c + 4, &slot, 4);
  std::memcpy(c + 8, &generation, 4);
  std::memcpy(c + 12, &length, 4);
  if (length) std::memcpy(c + 16, bytes, length);
}

inline std::vector<uint8_t> frame(uint8_t flags, uint16_t type, uint32_t seq, const std::string& payload) {
  std::vector<uint8_t> bytes(kHeaderSize + payload.size());
  encodeHeader(bytes.data(), flags, type, uint32_t(payload.size()), seq);
  std::memcpy(bytes.data() + kHeaderSize, payload.data(), payload.size());
  return bytes;
}

// A blocking loopback TCP client with a receive timeout.
class Client {
 public:
  Client() = default;
  ~Client() { closeNow(false); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connectTo(int port, int timeoutMs) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(uint16_t(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      closeNow(false);
      return false;
    }
    buffer_.clear();
    return true;
  }
  int fd() const { return fd_; }
  bool open() const { return fd_ >= 0; }

  bool sendAll(const uint8_t* data, size_t length) {
    while (length > 0) {
      ssize_t n = ::send(fd_, data, length, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data += n;
      length -= size_t(n);
    }
    return true;
  }
  bool sendAll(const std::vector<uint8_t>& bytes) { return sendAll(bytes.data(), bytes.size()); }

  // Reads one frame. false on EOF, error or timeout (errno tells which).
  bool readFrame(uint8_t* flags, uint16_t* type, uint32_t* seq, std::string* payload) {
    if (!fill(kHeaderSize)) return false;
    const uint8_t* h = buffer_.data();
    if (h[0] != kMagic) {
      fail("client: bad magic 0x%02x from the server", h[0]);
      return false;
    }
    // The header is read out before the second fill: growing the buffer may
    // move it, and `h` would then point at freed memory.
    uint32_t length = getU32(h + 4);
    *flags = h[1];
    *type = getU16(h + 2);
    *seq = getU32(h + 8);
    if (!fill(kHeaderSize + length)) return false;
    payload->assign(reinterpret_cast<const char*>(buffer_.data() + kHeaderSize), length);
    buffer_.erase(buffer_.begin(), buffer_.begin() + long(kHeaderSize + length));
    return true;
  }

  // Reads and throws away up to `limit` bytes (0 on EOF/timeout).
  ssize_t readRaw(uint8_t* into, size_t limit) {
    for (;;) {
      ssize_t n = ::recv(fd_, into, limit, 0);
      if (n < 0 && errno == EINTR) continue;
      return n;
    }
  }

  // abortive: SO_LINGER 0, so the server sees RST (ECONNRESET / EPIPE paths).
  void closeNow(bool abortive) {
    if (fd_ < 0) return;
    if (abortive) {
      linger l{1, 0};
      setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(fd_);
    fd_ = -1;
  }

 private:
  bool fill(size_t want) {
    uint8_t chunk[16384];
    while (buffer_.size() < want) {
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) errno = 0;  // end of stream, not a timeout
      if (n <= 0) return false;
      buffer_.insert(buffer_.end(), chunk, chunk + n);
    }
    return true;
  }
  int fd_ = -1;
  std::vector<uint8_t> buffer_;
};

}  // namespace test
}  // namespace edgepoll
