// Latency histogram of the load generator: log-linear buckets, HDR-style.
// Owns: bucket counts, min, max, sum. Does not own: any clock (callers pass
// nanoseconds). Not thread-safe on purpose: each worker thread records into its
// own histogram, and the run merges them after the workers have been joined,
// so the hot path has no atomics.
#pragma once
#include <cstdint>
#include <vector>

namespace edgepoll {

class Histogram {
 public:
  // Values below 2^kSubBits ns are exact; above, every power of two is cut into
  // 2^(kSubBits-1) = 64 buckets, so a reported value is within 1/64 (~1.6 %,
  // two significant digits) of the true one.
  static constexpr int kSubBits = 7;
  static constexpr int kHalf = 1 << (kSubBits - 1);
  // 2^37 ns is about 137 s: anything longer is clamped (a latency that long
  // is a hung connection, which the error counters report anyway).
  static constexpr int kMaxExponent = 36;
  static constexpr size_t kBuckets = (1u << kSubBits) + size_t(kMaxExponent - kSubBits + 1) * kHalf;

  Histogram() : counts_(kBuckets, 0) {}

  void record(uint64_t ns) {
    const uint64_t limit = (uint64_t(1) << (kMaxExponent + 1)) - 1;
    if (ns > limit) ns = limit;
    counts_[indexOf(ns)]++;
    if (count_ == 0 || ns < min_) min_ = ns;
    if (ns > max_) max_ = ns;
    count_++;
    sum_ += double(ns);
  }

  void merge(const Histogram& other) {
    for (size_t i = 0; i < kBuckets; i++) counts_[i] += other.counts_[i];
    if (other.count_ > 0 && (count_ == 0 || other.min_ < min_)) min_ = other.min_;
    if (other.max_ > max_) max_ = other.max_;
    count_ += other.count_;
    sum_ += other.sum_;
  }

  uint64_t count() const { return count_; }
  uint64_t min() const { return min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? sum_ / double(count_) : 0.0; }

  // The value below which a fraction p (0..1) of the samples fall: the
  // highest value of the bucket that holds that rank, capped at the maximum.
  uint64_t percentile(double p) const {
    if (count_ == 0) return 0;
    uint64_t rank = uint64_t(p * double(count_) + 0.5);
    if (rank < 1) rank = 1;
    if (rank > count_) rank = count_;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; i++) {
      seen += counts_[i];
      if (seen >= rank) {
        uint64_t top = highestOf(i);
        return top < max_ ? top : max_;
      }
    }
    return max_;
  }

  static size_t indexOf(uint64_t v) {
    if (v < (uint64_t(1) << kSubBits)) return size_t(v);
    int exponent = 63 - __builtin_clzll(v);  // >= kSubBits
    int shift = exponent - (kSubBits - 1);
    uint64_t sub = v >> shift;  // in [kHalf, 2 * kHalf)
    return (size_t(1) << kSubBits) + size_t(exponent - kSubBits) * kHalf + size_t(sub - kHalf);
  }

  static uint64_t highestOf(size_t index) {
    if (index < (size_t(1) << kSubBits)) return index;
    size_t k = index - (size_t(1) << kSubBits);
    int exponent = kSubBits + int(k / kHalf);
    uint64_t sub = kHalf + k % kHalf;
    int shift = exponent - (kSubBits - 1);
    return ((sub + 1) << shift) - 1;
  }

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace edgepoll
