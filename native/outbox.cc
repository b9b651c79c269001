// Per-connection write queue (see outbox.h). Loop thread only.
#include "outbox.h"

#include <cerrno>

#include "sys.h"

namespace edgepoll {

namespace {
// Appends below this size are copied into the last chunk, so a burst of tiny
// writes becomes one iovec entry instead of thousands.
constexpr size_t kCoalesceLimit = 16 * 1024;
constexpr size_t kFirstChunk = 256;
constexpr int kMaxIov = 64;
}  // namespace

void Outbox::append(const uint8_t* data, size_t length) {
  if (length == 0) return;
  if (head_ < chunks_.size()) {
    Chunk& last = chunks_.back();
    if (!last.shared && last.owned.size() + length <= kCoalesceLimit) {
      last.owned.insert(last.owned.end(), data, data + length);
      size_ += length;
      return;
    }
  }
  Chunk chunk;
  // Sized to the write, not to the coalescing limit: a heartbeat sweep PINGs
  // thousands of idle connections at once, and 4 KiB each stayed in RSS
  // (malloc keeps freed memory). Coalesced appends grow the vector as needed.
  chunk.owned.reserve(length < kFirstChunk ? kFirstChunk : length);
  chunk.owned.assign(data, data + length);
  chunks_.push_back(std::move(chunk));
  size_ += length;
}

void Outbox::appendShared(const SharedBytes& bytes) {
  if (!bytes || bytes->empty()) return;
  // A small broadcast is cheaper to copy than to track.
  if (bytes->size() <= 512) return append(bytes->data(), bytes->size());
  Chunk chunk;
  chunk.shared = bytes;
  chunks_.push_back(std::move(chunk));
  size_ += bytes->size();
}

int Outbox::flush(int fd, uint64_t* written) {
  retry_ = false;
  while (size_ > 0) {
    iovec iov[kMaxIov];
    int count = 0;
    size_t offered = 0;
    for (size_t i = head_; i < chunks_.size() && count < kMaxIov; i++, count++) {
      iov[count].iov_base = const_cast<uint8_t*>(chunks_[i].data() + chunks_[i].offset);
      iov[count].iov_len = chunks_[i].length() - chunks_[i].offset;
      offered += iov[count].iov_len;
    }
    ssize_t n = writeSome(fd, iov, count);
    if (n < 0) {
      if (n == -EAGAIN || n == -EWOULDBLOCK) return 0;
      // No kernel memory for the skb right now: nothing is wrong with the
      // connection, but no EPOLLOUT edge will announce the recovery either,
      // so the loop offers the bytes again on its next iteration.
      if (n == -ENOBUFS || n == -ENOMEM) {
        retry_ = true;
        return 0;
      }
      return int(-n);
    }
    *written += uint64_t(n);
    size_ -= size_t(n);
    size_t left = size_t(n);
    while (left > 0) {
      Chunk& chunk = chunks_[head_];
      size_t rest = chunk.length() - chunk.offset;
      if (left < rest) {
        chunk.offset += left;
        break;
      }
      left -= rest;
      chunk.shared.reset();
      std::vector<uint8_t>().swap(chunk.owned);
      head_++;
    }
    if (head_ == chunks_.size()) {
      // Empty: give the chunk slots back too, so a connection that once
      // queued thousands of chunks holds none while idle.
      std::vector<Chunk>().swap(chunks_);
      head_ = 0;
    } else if (head_ > 64 && head_ * 2 > chunks_.size()) {
      // A queue that never empties must not keep its written chunks forever.
      chunks_.erase(chunks_.begin(), chunks_.begin() + long(head_));
      head_ = 0;
    }
    // A short write means the socket buffer is full: skip the EAGAIN probe.
    if (size_t(n) < offered) return 0;
  }
  return 0;
}

void Outbox::clear() {
  std::vector<Chunk>().swap(chunks_);
  head_ = 0;
  size_ = 0;
  retry_ = false;
}

}  // namespace edgepoll
