// TopicTable (see topics.h). Loop thread only.
#include "topics.h"

#include <algorithm>

namespace edgepoll {

bool TopicTable::join(uint32_t slot, const std::string& topic) {
  if (!members_[topic].insert(slot).second) return false;
  bySlot_[slot].push_back(topic);
  subscriptions_++;
  return true;
}

bool TopicTable::leave(uint32_t slot, const std::string& topic) {
  auto found = members_.find(topic);
  if (found == members_.end() || found->second.erase(slot) == 0) return false;
  if (found->second.empty()) members_.erase(found);
  subscriptions_--;
  auto mine = bySlot_.find(slot);
  if (mine != bySlot_.end()) {
    auto& list = mine->second;
    auto at = std::find(list.begin(), list.end(), topic);  // one connection's topics: short (maxTopicsPerConnection)
    if (at != list.end()) {
      *at = std::move(list.back());
      list.pop_back();
    }
    if (list.empty()) bySlot_.erase(mine);
  }
  return true;
}

void TopicTable::leaveAll(uint32_t slot) {
  auto mine = bySlot_.find(slot);
  if (mine == bySlot_.end()) return;
  for (const std::string& topic : mine->second) {
    auto found = members_.find(topic);
    if (found == members_.end()) continue;
    if (found->second.erase(slot) > 0) subscriptions_--;
    if (found->second.empty()) members_.erase(found);
  }
  bySlot_.erase(mine);
}

const TopicTable::Members* TopicTable::members(const std::string& topic) const {
  auto found = members_.find(topic);
  return found == members_.end() ? nullptr : &found->second;
}

}  // namespace edgepoll
