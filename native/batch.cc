// Batch encoding (see batch.h and docs/internals.md). Filled on a loop
// thread, copied out on the JS thread; never both at once (the ring hands it over).
#include "batch.h"

#include <cstring>

namespace edgepoll {

namespace {
inline void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }  // little-endian hosts (x86-64, arm64)
inline void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
constexpr size_t kKeepCapacity = 512 * 1024;
}  // namespace

void Batch::add(const Record& record, const uint8_t* payload, size_t length) {
  size_t at = records_.size();
  records_.resize(at + kRecordSize);
  uint8_t* r = records_.data() + at;
  r[0] = record.kind;
  r[1] = record.flags;
  put16(r + 2, record.type);
  put32(r + 4, record.slot);
  put32(r + 8, record.generation);
  put32(r + 12, record.seq);
  put32(r + 16, uint32_t(slab_.size()));
  put32(r + 20, uint32_t(length));
  put32(r + 24, record.value);
  put16(r + 28, record.code);
  put16(r + 30, 0);
  if (length > 0) slab_.insert(slab_.end(), payload, payload + length);
  count_++;
}

void Batch::copyTo(uint8_t* out) const {
  if (!records_.empty()) std::memcpy(out, records_.data(), records_.size());
  if (!slab_.empty()) std::memcpy(out + records_.size(), slab_.data(), slab_.size());
}

void Batch::reset() {
  records_.clear();
  slab_.clear();
  count_ = 0;
  if (slab_.capacity() > kKeepCapacity) std::vector<uint8_t>().swap(slab_);
  if (records_.capacity() > kKeepCapacity) std::vector<uint8_t>().swap(records_);
}

}  // namespace edgepoll
