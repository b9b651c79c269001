// The loops of one engine and their threads; listening and balancing.
// Owns: the Loop objects (and through them every fd), the shared connection
// counter. Does not own: the bridge (it only rings it) or any Node-API value.
// Runs on: the JS thread (every method); the loops run on their own threads.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loop.h"

namespace edgepoll {

class Pool {
 public:
  Pool(const LoopConfig& config, uint32_t threads, bool exclusive, Doorbell* doorbell);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Creates every loop's epoll and eventfd. 0 or an errno.
  int init();
  // Binds and starts the threads. reuseport: one SO_REUSEPORT listener per
  // loop (port 0: the first picks the port, the others bind to it); exclusive:
  // one listener, a dup in every loop's epoll with EPOLLEXCLUSIVE.
  // Returns the bound port or -errno.
  int listen(const std::string& host, int port, int backlog);
  // Every loop closes its listener; returns when they all did (or after 2 s).
  void stopAccepting();
  // Stops and joins every thread; idempotent. Connections are closed unreported.
  void stop();

  bool started() const { return started_; }
  bool stopped() const { return stopped_; }
  size_t size() const { return loops_.size(); }
  Loop& loop(size_t index) { return *loops_[index]; }
  // false: that loop's inbox is full.
  bool submit(size_t loop, const uint8_t* bytes, size_t length);
  // One shared copy to every loop; false (nothing queued) when any inbox is full.
  bool broadcast(const uint8_t* bytes, size_t length);
  // One shared copy of `frame` to every loop, each sending it to its members of
  // `topic` except connection (exceptLoop, exceptSlot, exceptGeneration);
  // exceptLoop UINT32_MAX = nobody. false (nothing queued) when any inbox is full.
  bool publish(const std::string& topic, const uint8_t* frame, size_t length, uint32_t exceptLoop, uint32_t exceptSlot,
               uint32_t exceptGeneration);

 private:
  LoopShared shared_;
  std::vector<std::unique_ptr<Loop>> loops_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace edgepoll
