// The loops of one engine and their threads; listening and balancing.
// Owns: the Loop objects (and through them every fd), the shared connection
// counter. Does not own: the bridge (it only rings it) or any Node-API value.
// Runs on: the JS thread (every method; stop() also from the exit path); the
// loops run on their own threads.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
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
  // threads: 0. The one loop gets no thread: a Driver runs it on the JS
  // thread once listening (native/driver.h). Before listening.
  void runOnCaller() { onCaller_ = true; }
  bool onCaller() const { return onCaller_; }
  // Binds and starts the threads. reuseport: one SO_REUSEPORT listener per
  // loop (port 0: the first picks the port, the others bind to it); exclusive:
  // one listener, a dup in every loop's epoll with EPOLLEXCLUSIVE.
  // Returns the bound port or -errno.
  int listen(const std::string& host, int port, int backlog);
  // Listens on a Unix socket at `path`: one socket, a dup in every loop's
  // epoll with EPOLLEXCLUSIVE whatever the accept mode (SO_REUSEPORT does not
  // spread Unix sockets). The file is unlinked when accepting stops. 0 or -errno.
  int listenUnix(const std::string& path, int backlog);
  // Serves a listening socket made elsewhere (the workers' primary, see
  // src/engines/workers/engine.ts): a dup in every loop's epoll with
  // EPOLLEXCLUSIVE; `fd` itself stays the caller's. Closing these dups leaves
  // the socket and its accept queue to whoever else holds it.
  // Returns the bound port (0 for a Unix socket) or -errno (EINVAL: not a listening socket).
  int adopt(int fd);
  // Every loop closes its listener; returns when they all did (or after 2 s).
  void stopAccepting();
  // Freed heap back to the OS soon: one loop trims (malloc_trim covers every arena).
  void trimSoon();
  // Stops and joins every thread; idempotent, and safe from the exit path
  // (stopAllAtExit) while another thread calls it. Connections are closed unreported.
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
  // Gives every loop its listener (fds[i], owned from here on) and starts the threads.
  int start(const std::vector<int>& fds);
  void unlinkSocketFile();

  LoopShared shared_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::string unixPath_;  // the socket file listenUnix made, until unlinked
  uint64_t unixDev_ = 0;
  uint64_t unixIno_ = 0;
  bool started_ = false;
  bool onCaller_ = false;
  std::atomic<bool> stopped_{false};  // written by stop(), possibly on the exit path's thread
  std::mutex stopMutex_;
};

// Registered with atexit() when the first Pool is made: process.exit() runs
// no environment cleanup hook, so without this the loop threads would still
// run (and touch their bridge) while the process tears down.
void stopAllAtExit();

}  // namespace edgepoll
