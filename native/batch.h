// One loop iteration's events for JS: 32-byte records + a payload slab
// (format: docs/internals.md "Batches"), and the doorbell interface the loop
// rings after handing a batch over.
// Owns: the record and slab bytes of one batch. Does not own: the ring that
// carries it, the ArrayBuffer JS gets (the bridge copies into a fresh,
// uninitialised one).
// Runs on: filled on a loop thread, read and recycled on the JS thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace edgepoll {

enum RecordKind : uint8_t {
  kRecordOpen = 1,
  kRecordMessage = 2,
  kRecordData = 3,
  kRecordDrain = 4,
  kRecordBackpressure = 5,
  kRecordEnd = 6,
  kRecordClose = 7,
  kRecordError = 8,
};

constexpr size_t kRecordSize = 32;

struct Record {
  uint8_t kind = 0;
  uint8_t flags = 0;
  uint16_t type = 0;
  uint32_t slot = 0;
  uint32_t generation = 0;
  uint32_t seq = 0;
  uint32_t value = 0;
  uint16_t code = 0;
};

class Batch {
 public:
  // Appends one record whose payload (may be empty) is copied into the slab.
  void add(const Record& record, const uint8_t* payload, size_t length);
  uint32_t count() const { return count_; }
  // Records + slab, the ArrayBuffer size.
  size_t bytes() const { return records_.size() + slab_.size(); }
  bool empty() const { return count_ == 0; }
  // Copies records then slab into `out` (bytes() long).
  void copyTo(uint8_t* out) const;
  // Forgets the content, keeps up to a modest capacity for reuse.
  void reset();
  // Calls fn(slot, generation, length) for every DATA and MESSAGE record: the
  // bytes this batch held against each connection's read credit. Loop thread,
  // once JS has consumed the batch and handed it back.
  template <typename Fn>
  void forEachPayload(Fn fn) const {
    for (size_t at = 0; at + kRecordSize <= records_.size(); at += kRecordSize) {
      const uint8_t* r = records_.data() + at;
      if (r[0] != kRecordData && r[0] != kRecordMessage) continue;
      uint32_t slot, generation, length;
      std::memcpy(&slot, r + 4, 4);
      std::memcpy(&generation, r + 8, 4);
      std::memcpy(&length, r + 20, 4);
      fn(slot, generation, length);
    }
  }

 private:
  std::vector<uint8_t> records_;
  std::vector<uint8_t> slab_;
  uint32_t count_ = 0;
};

// Rung by a loop after it pushed a batch; implemented by the bridge.
class Doorbell {
 public:
  virtual ~Doorbell() = default;
  // Safe from any thread.
  virtual void ring() = 0;
};

}  // namespace edgepoll
