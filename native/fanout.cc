// A Loop's topic paths (issue 14): SUBSCRIBE / UNSUBSCRIBE commands from JS
// and the fan-out of one publish to this loop's members, every member
// sharing the one encoded frame (as a broadcast does), with each member's
// own outbound bounds applied (a member that does not read is closed as a
// slow consumer by updateWater and never holds anyone else up).
// Runs on: the loop thread, except pushPublish (JS thread: only the inbox
// ring and atomics, like pushBroadcast).
#include <cstring>

#include "loop.h"

namespace edgepoll {

void Loop::pushPublish(const SharedBytes& frame, const std::string& topic, uint32_t exceptSlot, uint32_t exceptGeneration) {
  auto* block = new InboxBlock();
  block->broadcast = frame;
  block->publish = true;
  block->topic = topic;
  block->exceptSlot = exceptSlot;
  block->exceptGeneration = exceptGeneration;
  inboxBytes_ += frame->size() + topic.size();
  inbox_.push(block);
  wakeIfSleeping();
}

void Loop::applyPublish(const InboxBlock& block) {
  inboxBytes_ -= block.broadcast->size() + block.topic.size();
  const TopicTable::Members* members = topics_.members(block.topic);
  if (!members) return;
  // sendShared only queues (markDirty); nothing in this loop can change the
  // membership set while it is walked.
  for (uint32_t slot : *members) {
    Conn& conn = *conns_[slot];
    if (slot == block.exceptSlot && conn.generation == block.exceptGeneration) continue;
    if (conn.state == ConnState::Open && !conn.proxy) sendShared(conn, block.broadcast);
  }
}

void Loop::applyTopicCommand(Conn& conn, uint8_t op, const uint8_t* payload, size_t size) {
  std::string topic(reinterpret_cast<const char*>(payload), size);
  if (op == kOpSubscribe) topics_.join(conn.slot, topic);
  else if (op == kOpUnsubscribe) topics_.leave(conn.slot, topic);
}

}  // namespace edgepoll
