// Accepting for one loop: the listener (a dup of the one socket in exclusive
// mode), the reserve fd spent to drop a connection when the process is out of
// fds, the back-off after EMFILE/ENFILE or ENOBUFS/ENOMEM (a backlog left
// behind raises no new edge), and the admission of each new connection
// (trusted PROXY peer, maxConnections, a slot, its epoll registration).
// Owns: the listening fd and the reserve fd. Does not own: the epoll fd, the
// connections it admits (the loop's slot table).
// Runs on: the loop thread, except setListener/dropListener (JS thread, before
// start()) and requestStop/accepting (JS thread: atomics only).
#pragma once
#include <sys/socket.h>

#include <atomic>
#include <cstdint>

namespace edgepoll {

class Loop;

class Acceptor {
 public:
  static constexpr uint32_t kToken = 0xFFFFFFFFu;  // the listener's epoll data

  explicit Acceptor(Loop& loop) : loop_(loop) {}
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  void init();  // takes the reserve fd
  // Registers the listener with the loop's epoll: 0 (the acceptor owns fd now)
  // or an errno (the caller still owns fd).
  int setListener(int fd);
  void dropListener();  // undoes setListener before start()
  void requestStop() { stop_ = true; }  // JS thread; the loop acts on its next wake-up
  bool accepting() const { return accepting_.load(); }

  // Loop thread.
  void onWake();      // closes the listener once requestStop() was called
  void onReadable();  // accepts up to a budget
  // Accepting is due now: a backlog left behind (budget spent, or the batch
  // ring was full and is not any more), or the back-off is over.
  bool due(int64_t now, bool outputBlocked) const {
    return (again_ && !outputBlocked) || (retryAt_ != 0 && now >= retryAt_);
  }
  bool again() const { return again_; }
  // The epoll_wait timeout, shortened to the end of a back-off.
  int clampTimeout(int timeout, int64_t now) const {
    if (retryAt_ == 0) return timeout;
    int untilRetry = int(retryAt_ - now);
    int shorter = timeout < untilRetry ? timeout : untilRetry;
    return shorter < 0 ? 0 : shorter;
  }
  void closeListener();  // the loop is stopping

 private:
  void adopt(int fd, const sockaddr_storage& address);
  bool trustedPeer(const sockaddr_storage& address) const;

  Loop& loop_;
  int listenFd_ = -1;
  int reserveFd_ = -1;
  // Accepting stopped with connections left in the backlog: the accept budget
  // ran out, or the batch ring is full (accepting waits for JS, so a
  // connect flood during a JS stall stays in the kernel's backlog).
  bool again_ = false;
  // Out of fds or kernel memory: accepting is retried at this time (ms), since
  // connections left in the backlog raise no new edge later. 0 = no retry pending.
  int64_t retryAt_ = 0;
  std::atomic<bool> accepting_{false};
  std::atomic<bool> stop_{false};
};

}  // namespace edgepoll
