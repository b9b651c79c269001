// Which of one loop's connections subscribe to which topics (issue 14).
// Owns: the topic names and the slot memberships of its loop's connections,
// nothing else: not the connections (the loop), not the limits or the name
// rules (validated in TypeScript before a command is sent), not the bus.
// Membership is by slot; the loop drops a slot's memberships when it frees
// the slot, so a reused slot (new generation) starts with none.
// Runs on: the thread of the loop that owns it, only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace edgepoll {

class TopicTable {
 public:
  using Members = std::unordered_set<uint32_t>;

  // false: nothing changed (already a member / not a member).
  bool join(uint32_t slot, const std::string& topic);
  bool leave(uint32_t slot, const std::string& topic);
  // The slot is being freed: forget every membership it had.
  void leaveAll(uint32_t slot);
  // nullptr when no connection of this loop subscribes to `topic`.
  const Members* members(const std::string& topic) const;

  size_t topics() const { return members_.size(); }
  size_t subscriptions() const { return subscriptions_; }

 private:
  // A set per topic, not a vector: a connection that leaves ten topics of
  // 10,000 members each must not cost 100,000 comparisons.
  std::unordered_map<std::string, Members> members_;
  std::unordered_map<uint32_t, std::vector<std::string>> bySlot_;
  size_t subscriptions_ = 0;
};

}  // namespace edgepoll
