// Commands from JS to one loop: blocks of commands (write, end, destroy,
// close, subscribe, unsubscribe; format in docs/internals.md), broadcasts and
// publishes, through a bounded ring whose blocks and bytes are both capped
// (a full inbox is JS's backpressure). Applied once per loop iteration, with
// the outbox bytes broadcasts may add per iteration bounded as well.
// Owns: the inbox ring and its byte count, the loop's topic table (only
// commands change memberships; fanout.cc). Does not own: the connections.
// Runs on: submit/hasRoom/pushBroadcast/pushPublish on the JS thread (the
// ring's only producer: atomics, the ring and the loop's eventfd); the rest
// on the loop thread.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "conn.h"
#include "ring.h"
#include "topics.h"

namespace edgepoll {

class Loop;

// A block of commands or one broadcast, JS → loop.
struct InboxBlock {
  std::vector<uint8_t> commands;
  SharedBytes broadcast;
  // A publish (fanout.cc): `broadcast` holds the frame, sent only to the
  // topic's members, except the connection exceptSlot/exceptGeneration.
  bool publish = false;
  std::string topic;
  uint32_t exceptSlot = UINT32_MAX;
  uint32_t exceptGeneration = 0;
};

// The command ops of a block; the payload of a topic command is the topic name.
enum CommandOp : uint8_t {
  kOpWrite = 1,
  kOpEnd = 2,
  kOpDestroy = 3,
  kOpClose = 4,
  kOpSubscribe = 5,
  kOpUnsubscribe = 6,
};

class Inbox {
 public:
  // blocks, bytes: LoopBounds::inboxBlocks, inboxBytes.
  Inbox(Loop& loop, size_t blocks, size_t bytes) : loop_(loop), ring_(blocks), maxBytes_(bytes) {}
  ~Inbox();  // JS thread, after join()
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // JS thread. false = inbox full, nothing taken.
  bool submit(const uint8_t* bytes, size_t length);
  bool hasRoom() const { return ring_.hasRoom() && bytes_.load() < maxBytes_; }
  void pushBroadcast(const SharedBytes& bytes);  // call only after hasRoom()
  // fanout.cc; call only after hasRoom(). exceptSlot UINT32_MAX = nobody excepted.
  void pushPublish(const SharedBytes& frame, const std::string& topic, uint32_t exceptSlot, uint32_t exceptGeneration);

  // Loop thread.
  bool empty() const { return ring_.empty(); }
  void apply();
  void forget(uint32_t slot) { topics_.leaveAll(slot); }  // the slot is being freed

 private:
  void push(InboxBlock* block, size_t bytes);
  void applyCommands(const uint8_t* bytes, size_t length);
  void applyPublish(const InboxBlock& block);                                    // fanout.cc
  void applyTopicCommand(Conn& conn, uint8_t op, const uint8_t* payload, size_t size);  // fanout.cc

  Loop& loop_;
  SpscRing<InboxBlock*> ring_;
  std::atomic<size_t> bytes_{0};
  size_t maxBytes_;
  TopicTable topics_;
};

}  // namespace edgepoll
