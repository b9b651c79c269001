// A bounded single-producer / single-consumer ring of pointers.
// Owns: the slots only (not what the pointers point to). push() fails when the
// ring is full; that failure is the back-pressure signal every caller handles.
// Runs on: exactly one producer thread and one consumer thread.
#pragma once
#include <atomic>
#include <cstddef>
#include <vector>

namespace edgepoll {

template <typename T>
class SpscRing {
 public:
  explicit SpscRing(size_t capacity) : slots_(roundUp(capacity)), mask_(slots_.size() - 1) {}

  // Producer only.
  bool push(T value) {
    size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_.load(std::memory_order_acquire) > mask_) return false;
    slots_[tail & mask_] = value;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }
  // Producer only: whether push() would succeed now (it stays true until this
  // producer pushes, since the consumer only makes room).
  // Consumer side: nothing to pop right now.
  bool empty() const { return head_.load(std::memory_order_relaxed) == tail_.load(std::memory_order_acquire); }
  bool hasRoom() const { return tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_acquire) <= mask_; }

  // Consumer only.
  bool pop(T& value) {
    size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_.load(std::memory_order_acquire)) return false;
    value = slots_[head & mask_];
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

 private:
  static size_t roundUp(size_t n) {
    size_t p = 2;
    while (p < n) p <<= 1;
    return p;
  }
  std::vector<T> slots_;
  size_t mask_;
  alignas(64) std::atomic<size_t> head_{0};
  alignas(64) std::atomic<size_t> tail_{0};
};

}  // namespace edgepoll
