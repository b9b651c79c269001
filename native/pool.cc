// Loop threads, listening (TCP and Unix sockets) and the JS → loop hand-offs (see pool.h). JS thread.
#include "pool.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "sys.h"

namespace edgepoll {

namespace {
// Every live Pool of the process (all environments: main and worker threads).
// Leaked on purpose: it must outlive static destruction, which follows atexit.
std::mutex& registryMutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}
std::vector<Pool*>& registry() {
  static auto* pools = new std::vector<Pool*>();
  return *pools;
}
}  // namespace

void stopAllAtExit() {
  std::lock_guard<std::mutex> lock(registryMutex());
  for (Pool* pool : registry()) pool->stop();
}

Pool::Pool(const LoopConfig& config, uint32_t threads, bool exclusive, Doorbell* doorbell) {
  shared_.doorbell = doorbell;
  shared_.exclusive = exclusive;
  if (threads < 1) threads = 1;
  if (threads > 255) threads = 255;  // the loop index fits in 8 bits of an id
  for (uint32_t i = 0; i < threads; i++) loops_.push_back(std::make_unique<Loop>(i, config, shared_));
  std::lock_guard<std::mutex> lock(registryMutex());
  static bool hooked = std::atexit(stopAllAtExit) == 0;
  (void)hooked;
  registry().push_back(this);
}

Pool::~Pool() {
  stop();
  std::lock_guard<std::mutex> lock(registryMutex());
  auto& pools = registry();
  pools.erase(std::remove(pools.begin(), pools.end(), this), pools.end());
}

int Pool::init() {
  for (auto& loop : loops_) {
    int err = loop->init();
    if (err != 0) return err;
  }
  return 0;
}

int Pool::listen(const std::string& host, int port, int backlog) {
  if (started_ || stopped_) return -EALREADY;
  std::vector<int> fds;
  auto fail = [&fds](int err) {
    for (int fd : fds) close(fd);
    return err;
  };
  if (!shared_.exclusive && port != 0) {
    // SO_REUSEPORT would let us join another server already on this port (same
    // user): a plain bind first turns that into EADDRINUSE, like node:net.
    int probe = makeListener(host, port, backlog, false, true);
    if (probe < 0) return probe;
    close(probe);
  }
  int first = makeListener(host, port, backlog, !shared_.exclusive);
  if (first < 0) return first;
  fds.push_back(first);
  int bound = boundPort(first);
  if (bound < 0) return fail(bound);
  for (size_t i = 1; i < loops_.size(); i++) {
    // exclusive: every loop holds its own dup of the one listening socket, so
    // each closes its own fd and no thread accepts on an fd another closed.
    int fd = shared_.exclusive ? fcntl(first, F_DUPFD_CLOEXEC, 0) : makeListener(host, bound, backlog, true);
    if (fd < 0) return fail(shared_.exclusive ? -errno : fd);
    fds.push_back(fd);
  }
  int err = start(fds);
  return err != 0 ? err : bound;
}

int Pool::listenUnix(const std::string& path, int backlog) {
  if (started_ || stopped_) return -EALREADY;
  uint64_t dev = 0, ino = 0;
  int first = makeUnixListener(path, backlog, &dev, &ino);
  if (first < 0) return first;
  std::vector<int> fds{first};
  for (size_t i = 1; i < loops_.size(); i++) {
    int fd = fcntl(first, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      int err = errno;
      for (int open : fds) close(open);
      unlinkUnixListener(path, dev, ino);
      return -err;
    }
    fds.push_back(fd);
  }
  unixPath_ = path;
  unixDev_ = dev;
  unixIno_ = ino;
  // One socket shared by every loop: without EPOLLEXCLUSIVE each connection would wake them all.
  shared_.exclusive = true;
  int err = start(fds);
  if (err != 0) {
    unixPath_.clear();
    unlinkUnixListener(path, dev, ino);
  }
  return err;
}

int Pool::adopt(int fd) {
  if (started_ || stopped_) return -EALREADY;
  int listening = 0;
  socklen_t size = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0) return -errno;
  if (!listening) return -EINVAL;
  // The loops accept until EAGAIN: a blocking socket would stall one forever.
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)) return -errno;
  int bound = boundPort(fd);
  if (bound < 0) return bound;
  std::vector<int> fds;
  for (size_t i = 0; i < loops_.size(); i++) {
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
      int err = errno;
      for (int open : fds) close(open);
      return -err;
    }
    fds.push_back(copy);
  }
  // Several processes share the one socket: without EPOLLEXCLUSIVE each connection would wake every loop of every one.
  shared_.exclusive = true;
  int err = start(fds);
  return err != 0 ? err : bound;
}

// Hands each loop its listening fd; on a failure closes every fd (those
// handed over through their loop) and returns the error.
int Pool::start(const std::vector<int>& fds) {
  for (size_t i = 0; i < loops_.size(); i++) {
    int err = loops_[i]->setListener(fds[i]);
    if (err == 0) continue;
    for (size_t j = 0; j < i; j++) loops_[j]->dropListener();  // closes fds[j]
    for (size_t j = i; j < fds.size(); j++) close(fds[j]);
    return -err;
  }
  if (!onCaller_) {
    for (auto& loop : loops_) loop->start();
  }
  started_ = true;
  return 0;
}

void Pool::unlinkSocketFile() {
  if (unixPath_.empty()) return;
  unlinkUnixListener(unixPath_, unixDev_, unixIno_);
  unixPath_.clear();
}

void Pool::trimSoon() {
  if (started_ && !stopped_ && !loops_.empty()) loops_[0]->trimSoon();
}

void Pool::stopAccepting() {
  if (!started_ || stopped_) return;
  // No new peer can find the file from here on; those already queued are the loops' to accept or drop.
  unlinkSocketFile();
  for (auto& loop : loops_) loop->stopAccepting();
  // The loops never wait for JS, so this takes one wake-up each.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto& loop : loops_) {
    while (loop->accepting() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
}

void Pool::stop() {
  std::lock_guard<std::mutex> lock(stopMutex_);
  if (stopped_) return;
  stopped_ = true;
  unlinkSocketFile();
  for (auto& loop : loops_) loop->requestStop();
  for (auto& loop : loops_) loop->join();
}

bool Pool::submit(size_t loop, const uint8_t* bytes, size_t length) {
  if (!started_ || stopped_ || loop >= loops_.size()) return true;  // nothing can be open: drop
  return loops_[loop]->submit(bytes, length);
}

bool Pool::broadcast(const uint8_t* bytes, size_t length) {
  if (!started_ || stopped_ || length == 0) return true;
  for (auto& loop : loops_) {
    if (!loop->hasRoom()) return false;
  }
  // Room only grows between the check and the push: this thread is the only producer.
  auto shared = std::make_shared<const std::vector<uint8_t>>(bytes, bytes + length);
  for (auto& loop : loops_) loop->pushBroadcast(shared);
  return true;
}

bool Pool::publish(const std::string& topic, const uint8_t* frame, size_t length, uint32_t exceptLoop, uint32_t exceptSlot,
                   uint32_t exceptGeneration) {
  if (!started_ || stopped_ || length == 0) return true;
  for (auto& loop : loops_) {
    if (!loop->hasRoom()) return false;
  }
  auto shared = std::make_shared<const std::vector<uint8_t>>(frame, frame + length);
  for (auto& loop : loops_) {
    bool mine = loop->index() == exceptLoop;
    loop->pushPublish(shared, topic, mine ? exceptSlot : UINT32_MAX, mine ? exceptGeneration : 0);
  }
  return true;
}

}  // namespace edgepoll
