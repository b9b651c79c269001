// The write queue of one connection.
// Owns: bytes accepted for the connection and not yet taken by the kernel;
// small appends coalesce into one chunk, broadcasts are shared (reference-
// counted) between every connection of every loop. Does not own: the fd, the
// water-mark policy (the loop applies it using size()).
// Runs on: the loop thread that owns the connection.
#pragma once
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace edgepoll {

using SharedBytes = std::shared_ptr<const std::vector<uint8_t>>;

class Outbox {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void append(const uint8_t* data, size_t length);
  void appendShared(const SharedBytes& bytes);

  // Hands as much as the kernel takes (writev via sendmsg, MSG_NOSIGNAL).
  // Returns 0 (all written, EAGAIN, or ENOBUFS/ENOMEM: see retry()) or the
  // errno that broke the connection. *written counts bytes taken.
  int flush(int fd, uint64_t* written);
  // The last flush stopped on a transient kernel shortage (ENOBUFS/ENOMEM):
  // no edge will follow, the caller must offer the bytes again.
  bool retry() const { return retry_; }

  // Drops everything and gives the memory back.
  void clear();

 private:
  struct Chunk {
    SharedBytes shared;          // set for broadcasts
    std::vector<uint8_t> owned;  // otherwise
    size_t offset = 0;
    const uint8_t* data() const { return shared ? shared->data() : owned.data(); }
    size_t length() const { return shared ? shared->size() : owned.size(); }
  };
  std::vector<Chunk> chunks_;  // empty vector = no allocation for idle connections
  size_t head_ = 0;            // first chunk not fully written
  size_t size_ = 0;
  bool retry_ = false;
};

}  // namespace edgepoll
