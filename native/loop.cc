// The loop thread's iteration, accepting, the inbox and the batch hand-off
// (see loop.h). Per-connection paths are in conn.cc, the sweep in sweep.cc.
#include "loop.h"

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "sys.h"

namespace edgepoll {

namespace {
constexpr uint32_t kListenerToken = 0xFFFFFFFFu;
constexpr uint32_t kWakeToken = 0xFFFFFFFEu;
constexpr int kAcceptBudget = 256;
constexpr int64_t kAcceptBackoffMs = 100;  // out of fds or memory: retry accepting this often, never spin
constexpr int kMaxEvents = 256;
constexpr uint32_t kMaxSlots = 1u << 22;
constexpr int kWriteRetryMs = 5;
// After this many bytes moved, an idle loop hands freed heap back to the OS
// (at most once per kTrimIntervalMs): glibc keeps freed arena memory, so one
// burst would otherwise stay in RSS for the process's lifetime.
constexpr uint64_t kTrimAfterBytes = 16 * 1024 * 1024;
constexpr int64_t kTrimIntervalMs = 1000;  // ENOBUFS: the kernel is short of memory; do not spin on it

constexpr size_t kSlotQuarantine = 1024;  // free slots that wait before one is reused (loop.h)

bool ignorableAcceptError(int err) {
  switch (err) {
    case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN:
    case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH: case EPERM:
      return true;
    default:
      return false;
  }
}
}  // namespace

Loop::Loop(uint32_t index, const LoopConfig& config, LoopShared& shared)
    : index_(index), config_(config), shared_(shared), out_(config.bounds.outRingBatches),
      returns_(config.bounds.outRingBatches + 8),
      inbox_(config.bounds.inboxBlocks) {
  sweepClock_.configure(config.heartbeatInterval, config.heartbeatTimeout, config.idleTimeout, config.frameTimeout,
                        config.proxyProtocol ? config.proxyTimeout : 0);
  // A quarter of the hard limit leaves room for the answers (and the high-water
  // slack) below it; 64 KiB..1 MiB keeps one JS round trip from capping throughput.
  readWindow_ = std::min<uint64_t>(std::max<uint64_t>(config.maxBufferedAmount / 4, config.bounds.readBuffer), 1u << 20);
  if (config.bounds.readWindow != 0) readWindow_ = config.bounds.readWindow;
  inputBudget_.limit = size_t(config.maxPartialBytes);
}

Loop::~Loop() {
  for (auto& conn : conns_) {
    if (conn && conn->fd >= 0) close(conn->fd);
  }
  if (listenFd_ >= 0) close(listenFd_);
  if (reserveFd_ >= 0) close(reserveFd_);
  if (wakeFd_ >= 0) close(wakeFd_);
  if (epollFd_ >= 0) close(epollFd_);
  delete batch_;
  Batch* batch;
  while (out_.pop(batch)) delete batch;
  while (returns_.pop(batch)) delete batch;
  for (Batch* spare : spare_) delete spare;
  InboxBlock* block;
  while (inbox_.pop(block)) delete block;
}

int Loop::init() {
  epollFd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epollFd_ < 0) return errno;
  wakeFd_ = makeEventFd();
  if (wakeFd_ < 0) return errno;
  epoll_event event;
  event.events = EPOLLIN;  // level: drained on every wake-up
  event.data.u64 = kWakeToken;
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, wakeFd_, &event) != 0) return errno;
  reserveFd_ = openReserveFd();
  readBuffer_.resize(config_.bounds.readBuffer);
  return 0;
}

int Loop::setListener(int fd) {
  epoll_event event;
  // Edge-triggered: accept until EAGAIN (or budget → again), so an fd
  // shortage never turns into a busy loop on a listener that stays readable.
  event.events = EPOLLIN | (config_.levelTriggered ? 0u : uint32_t(EPOLLET));
  if (shared_.exclusive) event.events |= EPOLLEXCLUSIVE;
  event.data.u64 = kListenerToken;
  // ENOMEM/ENOSPC here would leave a server that listens and never accepts.
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, fd, &event) != 0) return errno;
  listenFd_ = fd;
  accepting_ = true;
  return 0;
}

void Loop::dropListener() {
  if (listenFd_ < 0) return;
  epoll_ctl(epollFd_, EPOLL_CTL_DEL, listenFd_, nullptr);
  close(listenFd_);
  listenFd_ = -1;
  accepting_ = false;
}

void Loop::start() { thread_ = std::thread([this] { run(); }); }

void Loop::requestStop() {
  stop_ = true;
  wake();
}

void Loop::join() {
  if (thread_.joinable()) thread_.join();
}

void Loop::wake() {
  if (wakeFd_ >= 0) signalEventFd(wakeFd_);
}

void Loop::stopAccepting() {
  acceptStop_ = true;
  wake();
}

bool Loop::hasRoom() const { return inbox_.hasRoom() && inboxBytes_.load() < config_.bounds.inboxBytes; }

bool Loop::submit(const uint8_t* bytes, size_t length) {
  if (!hasRoom()) return false;
  auto* block = new InboxBlock();
  block->commands.assign(bytes, bytes + length);
  inboxBytes_ += length;
  inbox_.push(block);  // cannot fail: hasRoom() and we are the only producer
  wakeIfSleeping();
  return true;
}

// A loop that is awake applies its inbox before it next waits, so a submit
// only writes the eventfd when the loop may be blocking: under load that is a
// syscall and a wake-up saved per submit. The fences pair with run(): either
// the submitter sees sleeping_, or the loop sees the pushed block.
void Loop::wakeIfSleeping() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed)) wake();
}

void Loop::pushBroadcast(const SharedBytes& bytes) {
  auto* block = new InboxBlock();
  block->broadcast = bytes;
  inboxBytes_ += bytes->size();
  inbox_.push(block);
  wakeIfSleeping();
}

void Loop::run() {
  epoll_event events[kMaxEvents];
  now_ = nowMs();
  sweepClock_.done(now_);
  while (!stop_.load(std::memory_order_relaxed)) {
    reclaim();
    if (outputBlocked_) flushBatch();
    // A full ring holds back reads and accepts alike: the bridge wakes us.
    bool more = !outputBlocked_ && (listenerAgain_ || !again_.empty());
    int timeout = more ? 0 : sweepClock_.waitMs(now_);
    if (acceptRetryAt_ != 0) timeout = std::max(0, std::min(timeout, int(acceptRetryAt_ - now_)));
    if (!writeRetry_.empty() && (timeout < 0 || timeout > kWriteRetryMs)) timeout = kWriteRetryMs;
    if (timeout != 0) timeout = trimWhenIdle(timeout);
    if (timeout != 0) {
      sleeping_.store(true, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!inbox_.empty()) timeout = 0;  // a submit raced with going to sleep
      // Pairs with the bridge's fence after it returns a batch: either it
      // sees creditWanted (set before this fence) and wakes us, or we see the return.
      if (creditPaused_ != 0 && !returns_.empty()) timeout = 0;
    }
    int n = epoll_wait(epollFd_, events, kMaxEvents, timeout);
    sleeping_.store(false, std::memory_order_relaxed);
    now_ = nowMs();
    if (n < 0 && errno != EINTR) break;  // EBADF/EINVAL: nothing sane left to do
    for (int i = 0; i < n; i++) dispatch(events[i]);
    if (outputBlocked_) flushBatch();  // the bridge may have drained and woken us
    if ((listenerAgain_ && !outputBlocked_) || (acceptRetryAt_ != 0 && now_ >= acceptRetryAt_)) onListener();
    serveAgain();
    applyInbox();
    if (sweepClock_.due(now_)) sweep();  // a slice; the rest of a pass after the next I/O
    retryWrites();
    flushDirty();  // after everything that writes, before the batch is sealed (DRAIN records)
    flushBatch();
    freeClosed();
  }
  // Stopping: close everything without reporting (JS is going away).
  for (uint32_t slot : live_) {
    Conn& conn = *conns_[slot];
    if (conn.fd >= 0) {
      close(conn.fd);
      conn.fd = -1;
      shared_.connections--;
    }
  }
  if (listenFd_ >= 0) close(listenFd_);
  listenFd_ = -1;
  accepting_ = false;
}

void Loop::dispatch(const epoll_event& event) {
  uint32_t slot = uint32_t(event.data.u64);
  uint32_t generation = uint32_t(event.data.u64 >> 32);
  if (slot == kWakeToken) {
    drainEventFd(wakeFd_);
    if (acceptStop_ && listenFd_ >= 0) {
      epoll_ctl(epollFd_, EPOLL_CTL_DEL, listenFd_, nullptr);
      close(listenFd_);
      listenFd_ = -1;
      listenerAgain_ = false;
      accepting_ = false;
    }
    return;
  }
  if (slot == kListenerToken) return onListener();
  // Events collected for a connection closed earlier in this iteration (or a
  // slot reused since) are skipped: the generation or the state tells.
  Conn* conn = lookup(slot, generation);
  if (!conn) return;
  if (event.events & EPOLLOUT) onWritable(*conn);
  if (conn->state == ConnState::Closing && (event.events & EPOLLIN)) {
    // Read and drop what a closing peer still sends: closing a socket with
    // unread bytes sends RST, and RST makes the peer discard our CLOSE frame.
    for (int i = 0; i < 4 && readSome(conn->fd, readBuffer_.data(), readBuffer_.size()) > 0; i++) {
    }
  }
  // Noted before anything can pause this connection's reads: the edge that
  // reported the hang-up is consumed now, and none follows it.
  if (event.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) conn->peerHungUp = true;
  if (conn->state != ConnState::Open) return;
  if (event.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readConn(*conn);
  if (conn->state == ConnState::Open && (event.events & EPOLLERR)) {
    int err = socketError(conn->fd);
    if (err != 0) closeNow(*conn, errnoCode(err), "");
  }
}

void Loop::onListener() {
  listenerAgain_ = false;
  acceptRetryAt_ = 0;
  if (listenFd_ < 0) return;
  for (int i = 0; i < kAcceptBudget; i++) {
    if (outputBlocked_) {
      // JS is behind: an accept would only add an OPEN (and soon a CLOSE)
      // record to a batch nobody takes. The backlog keeps the connections;
      // flushBatch()'s success lets run() come back here.
      listenerAgain_ = true;
      return;
    }
    sockaddr_storage address;
    int fd = acceptOne(listenFd_, &address);
    if (fd >= 0) {
      adopt(fd, address);
      continue;
    }
    int err = -fd;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (ignorableAcceptError(err)) continue;
    if (err == EMFILE || err == ENFILE) {
      stats_.acceptErrors++;
      reportError(err == EMFILE ? kEMFILE : kENFILE);
      // Out of fds: spend the reserve to accept and drop one pending
      // connection, so the queue drains instead of the listener staying hot.
      // Back-off: whatever the trick achieved, look again in 100 ms rather
      // than spin, and rather than wait for an edge that may never come.
      acceptRetryAt_ = now_ + kAcceptBackoffMs;
      if (reserveFd_ < 0) reserveFd_ = openReserveFd();  // another loop may have taken the fd we freed
      if (reserveFd_ < 0) return;
      close(reserveFd_);
      int dropped = acceptOne(listenFd_, &address);
      if (dropped >= 0) close(dropped);
      reserveFd_ = openReserveFd();
      if (dropped < 0) return;
      continue;
    }
    stats_.acceptErrors++;
    if (err == ENOBUFS || err == ENOMEM) {
      // The kernel is short of memory: the connection stays in the backlog
      // and raises no new edge, so look again after the back-off.
      reportError(kENOMEM);
      acceptRetryAt_ = now_ + kAcceptBackoffMs;
    }
    return;
  }
  listenerAgain_ = true;
}

void Loop::adopt(int fd, const sockaddr_storage& address) {
  if (config_.proxyProtocol && !trustedPeer(address)) {
    // Only trusted proxies may name the client (spec §3): abort before any byte is read.
    stats_.proxyErrors++;
    stats_.protocolErrors++;
    close(fd);
    return;
  }
  uint32_t before = shared_.connections.fetch_add(1);
  if (config_.maxConnections != 0 && before >= config_.maxConnections) {
    shared_.connections--;
    stats_.rejected++;
    if (config_.framing == Framing::Frame) {
      const char* reason = closeReason(kESERVER_FULL);
      uint8_t frame[kHeaderSize + 32];
      size_t length = std::strlen(reason);
      encodeHeader(frame, 0, kTypeClose, uint32_t(length), 0);
      std::memcpy(frame + kHeaderSize, reason, length);
      iovec iov{frame, kHeaderSize + length};
      writeSome(fd, &iov, 1);  // best effort into an empty socket buffer
    }
    close(fd);
    return;
  }
  Conn* taken = takeSlot();
  if (!taken) {
    // kMaxSlots in use, or no memory for the Conn: refuse this one, keep serving.
    shared_.connections--;
    close(fd);
    reportError(kENOMEM);
    return;
  }
  Conn& conn = *taken;
  epoll_event event;
  event.events = config_.levelTriggered ? uint32_t(EPOLLIN | EPOLLRDHUP)
                                        : uint32_t(EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  event.data.u64 = tokenFor(conn);
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    // ENOSPC (max_user_watches) / ENOMEM: refuse this connection, keep serving.
    int err = errno;
    close(fd);
    shared_.connections--;
    releaseSlot(conn.slot);
    reportError(err == ENOSPC ? kENOSPC : kENOMEM);
    return;
  }
  conn.fd = fd;
  conn.state = ConnState::Open;
  conn.interest = event.events;
  conn.lastRead = now_;
  if (config_.framing != Framing::Raw) conn.decoder.emplace(config_.framing, config_.maxFrame, Role::Server, &inputBudget_);
  stats_.accepted++;
  stats_.connections++;
  uint32_t port = 0;
  std::string text = addressText(address, &port);
  if (config_.proxyProtocol) {
    // OPEN waits for the header, which names the client (conn.cc deliverProxy).
    conn.announced = false;
    conn.proxy = std::make_unique<ProxyPending>();
    conn.proxy->peerAddress = std::move(text);
    conn.proxy->peerPort = port;
    conn.proxy->deadline = now_ + config_.proxyTimeout;
    return;
  }
  announce(conn, text, port);
}

void Loop::applyInbox() {
  // Outbox bytes broadcasts may add before this iteration's flush: a full
  // inbox of broadcasts (64 MiB) fanned out to thousands of receivers before
  // one flush would queue gigabytes. What is left waits in the inbox (run()
  // does not sleep on a non-empty inbox), so JS sees it full: backpressure.
  size_t fanout = 0;
  InboxBlock* block;
  while (fanout < config_.bounds.broadcastFanout && inbox_.pop(block)) {
    if (block->broadcast) fanout += block->broadcast->size() * (size_t(stats_.connections.load()) + 1);
    if (block->publish) {
      applyPublish(*block);  // at most every connection here, counted as a broadcast
    } else if (block->broadcast) {
      inboxBytes_ -= block->broadcast->size();
      // sendShared may close a slow consumer; live_ only changes in freeClosed().
      for (uint32_t slot : live_) {
        Conn& conn = *conns_[slot];
        if (conn.state == ConnState::Open && !conn.proxy) sendShared(conn, block->broadcast);
      }
    } else {
      inboxBytes_ -= block->commands.size();
      applyCommands(block->commands.data(), block->commands.size());
    }
    delete block;
  }
}

void Loop::serveAgain() {
  if (again_.empty() || outputBlocked_) return;
  std::vector<uint32_t> list;
  list.swap(again_);
  for (uint32_t slot : list) {
    Conn* queued = conns_[slot].get();  // null: closed and released since it was queued
    if (!queued || !queued->queued) continue;
    Conn& conn = *queued;
    conn.queued = false;
    if (conn.state != ConnState::Open) continue;
    resumeClock(conn);  // held back by us, not silent (sweep.cc)
    setInterest(conn);
    readConn(conn);
  }
  if (again_.empty()) again_.swap(list), again_.clear();
}

void Loop::freeClosed() {
  for (uint32_t slot : closed_) {
    topics_.leaveAll(slot);
    if (conns_[slot]->creditPaused) creditPaused_--;
    releaseSlot(slot);
  }
  closed_.clear();
  // After a burst the lists keep their capacity; give back what is far
  // beyond what the remaining connections need.
  if (closed_.capacity() > 4096) closed_.shrink_to_fit();
  if (live_.capacity() > 4096 && live_.size() < live_.capacity() / 8) live_.shrink_to_fit();
}

Conn* Loop::takeSlot() {
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
  stats_.slots.store(live_.size(), std::memory_order_relaxed);
  return conn;
}

// The Conn goes (its decoder, outbox and strings with it); the slot keeps
// only its next generation.
void Loop::releaseSlot(uint32_t slot) {
  Conn& conn = *conns_[slot];
  uint32_t mask = config_.generationBits >= 23 ? (1u << 23) - 1 : (1u << config_.generationBits) - 1;
  generations_[slot] = (conn.generation + 1) & mask;
  uint32_t last = live_.back();
  live_[conn.liveIndex] = last;
  conns_[last]->liveIndex = conn.liveIndex;
  live_.pop_back();
  conns_[slot].reset();
  freeSlots_.push_back(slot);
  stats_.slots.store(live_.size(), std::memory_order_relaxed);
}

// About to sleep for `timeout` ms: trims the heap once a burst is over, or
// shortens the sleep to the time the next trim is allowed.
int Loop::trimWhenIdle(int timeout) {
  uint64_t moved = stats_.bytesIn.load(std::memory_order_relaxed) + stats_.bytesOut.load(std::memory_order_relaxed);
  if (moved - trimmedAtBytes_ < kTrimAfterBytes) return timeout;
  int64_t wait = lastTrim_ + kTrimIntervalMs - now_;
  if (wait > 0) return timeout < 0 || timeout > wait ? int(wait) : timeout;
  trimmedAtBytes_ = moved;
  lastTrim_ = now_;
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  return timeout;
}

void Loop::retryWrites() {
  if (writeRetry_.empty()) return;
  std::vector<uint32_t> list;
  list.swap(writeRetry_);
  for (uint32_t slot : list) {
    Conn& conn = *conns_[slot];
    if (conn.state == ConnState::Open || conn.state == ConnState::Closing) markDirty(conn);
  }
}

void Loop::reportError(uint16_t code) {
  if (now_ - lastErrorReport_ < 1000) return;  // at most one per second
  lastErrorReport_ = now_;
  Record error;
  error.kind = kRecordError;
  error.code = code;
  record(error, nullptr, 0);
}

}  // namespace edgepoll
