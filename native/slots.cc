// SlotTable (see slots.h). Loop thread.
#include "slots.h"

#include <unistd.h>

#include <new>

namespace edgepoll {

namespace {
constexpr uint32_t kMaxSlots = 1u << 22;
constexpr size_t kSlotQuarantine = 1024;  // free slots that wait before one is reused (slots.h)
}  // namespace

SlotTable::SlotTable(uint32_t generationBits, std::atomic<uint64_t>& gauge)
    : mask_(generationBits >= 23 ? (1u << 23) - 1 : (1u << generationBits) - 1), gauge_(gauge) {}

SlotTable::~SlotTable() {
  for (auto& conn : conns_) {
    if (conn && conn->fd >= 0) close(conn->fd);
  }
}

Conn* SlotTable::take() {
  uint32_t slot;
  if (freeSlots_.size() > kSlotQuarantine || (!freeSlots_.empty() && conns_.size() >= kMaxSlots)) {
    slot = freeSlots_.front();
    freeSlots_.pop_front();
  } else if (conns_.size() < kMaxSlots) {
    slot = uint32_t(conns_.size());
    conns_.emplace_back();
    generations_.push_back(0);
  } else {
    return nullptr;
  }
  Conn* conn = new (std::nothrow) Conn();
  if (!conn) {
    freeSlots_.push_front(slot);
    return nullptr;
  }
  conns_[slot].reset(conn);
  conn->slot = slot;
  conn->generation = generations_[slot];
  conn->liveIndex = uint32_t(live_.size());
  live_.push_back(slot);
  gauge_.store(live_.size(), std::memory_order_relaxed);
  return conn;
}

void SlotTable::release(uint32_t slot) {
  Conn& conn = *conns_[slot];
  generations_[slot] = (conn.generation + 1) & mask_;
  uint32_t last = live_.back();
  live_[conn.liveIndex] = last;
  conns_[last]->liveIndex = conn.liveIndex;
  live_.pop_back();
  conns_[slot].reset();
  freeSlots_.push_back(slot);
  gauge_.store(live_.size(), std::memory_order_relaxed);
}

}  // namespace edgepoll
