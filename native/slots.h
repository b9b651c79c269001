// The slot table of one loop: which connection each id (slot + generation)
// names. A slot keeps its generation for ever (4 bytes), its Conn only while a
// connection uses it: memory returns after a burst. Free slots are reused
// oldest-first, and only while more than a quarantine's worth are free, so one
// slot's generation wraps only after 2^23 × 1024 connections and a stale id
// never names a new connection before that.
// Owns: the Conn objects, the generations, the free list and the live list
// (Open/Closing slots: what sweeps and broadcasts walk). Does not own the fds
// (Loop::finalize closes them), except those left open when the loop stopped.
// Runs on: the loop thread; the destructor on the JS thread, after join.
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "conn.h"

namespace edgepoll {

class SlotTable {
 public:
  // generationBits: width of a generation (LoopConfig); gauge: LoopStats::slots.
  SlotTable(uint32_t generationBits, std::atomic<uint64_t>& gauge);
  ~SlotTable();  // closes the fds of connections the stopping loop left open
  SlotTable(const SlotTable&) = delete;
  SlotTable& operator=(const SlotTable&) = delete;

  // A free slot with a new Conn on the live list, or null (every slot in
  // use, or no memory for the Conn).
  Conn* take();
  // The Conn goes (its decoder, outbox and strings with it); the slot keeps
  // only its next generation.
  void release(uint32_t slot);
  // The open or closing connection with this id; null for a stale id.
  Conn* lookup(uint32_t slot, uint32_t generation) const {
    if (slot >= conns_.size()) return nullptr;
    Conn* conn = conns_[slot].get();
    if (!conn || conn->generation != generation) return nullptr;
    if (conn->state != ConnState::Open && conn->state != ConnState::Closing) return nullptr;
    return conn;
  }
  Conn* find(uint32_t slot) const { return conns_[slot].get(); }  // null once released
  Conn& operator[](uint32_t slot) const { return *conns_[slot]; }  // a slot known to be in use
  const std::vector<uint32_t>& live() const { return live_; }
  // After a burst the live list keeps its capacity: give back what is far
  // beyond what the remaining connections need.
  void shrink() {
    if (live_.capacity() > 4096 && live_.size() < live_.capacity() / 8) live_.shrink_to_fit();
  }
  // The epoll data of a connection: its id.
  static uint64_t tokenFor(const Conn& conn) { return (uint64_t(conn.generation) << 32) | conn.slot; }

 private:
  uint32_t mask_;
  std::atomic<uint64_t>& gauge_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<uint32_t> generations_;
  std::deque<uint32_t> freeSlots_;
  std::vector<uint32_t> live_;
};

}  // namespace edgepoll
