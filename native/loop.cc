// The loop thread's iteration, accepting, the inbox and the batch hand-off
// (see loop.h). Per-connection paths are in conn.cc, the sweep in sweep.cc.
#include "loop.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sys.h"

namespace edgepoll {

namespace {
constexpr uint32_t kListenerToken = 0xFFFFFFFFu;
constexpr uint32_t kWakeToken = 0xFFFFFFFEu;
constexpr size_t kReadBufferSize = 64 * 1024;
constexpr size_t kOutRingBatches = 64;        // ≤ 64 × (cap + one read + maxFrame) per loop
constexpr size_t kInboxBlocks = 1024;
constexpr size_t kInboxBytes = 64 * 1024 * 1024;
constexpr int kAcceptBudget = 256;
constexpr int64_t kAcceptBackoffMs = 100;  // out of fds: retry accepting this often, never spin
constexpr int kMaxEvents = 256;
constexpr uint32_t kMaxSlots = 1u << 22;

uint64_t token(uint32_t slot, uint32_t generation) { return (uint64_t(generation) << 32) | slot; }

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
    : index_(index), config_(config), shared_(shared), out_(kOutRingBatches), returns_(kOutRingBatches + 8), inbox_(kInboxBlocks) {
  sweepClock_.configure(config.heartbeatInterval, config.heartbeatTimeout, config.idleTimeout, config.frameTimeout,
                        config.proxyProtocol ? config.proxyTimeout : 0);
  // A quarter of the hard limit leaves room for the answers (and the high-water
  // slack) below it; 64 KiB..1 MiB keeps one JS round trip from capping throughput.
  readWindow_ = std::min<uint64_t>(std::max<uint64_t>(config.maxBufferedAmount / 4, kReadBufferSize), 1u << 20);
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
  event.data.u64 = token(kWakeToken, 0);
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, wakeFd_, &event) != 0) return errno;
  reserveFd_ = openReserveFd();
  readBuffer_.resize(kReadBufferSize);
  return 0;
}

void Loop::setListener(int fd) {
  listenFd_ = fd;
  accepting_ = true;
}

void Loop::start() {
  if (listenFd_ >= 0) {
    epoll_event event;
    // Edge-triggered: accept until EAGAIN (or budget → again), so an fd
    // shortage never turns into a busy loop on a listener that stays readable.
    event.events = EPOLLIN | (config_.levelTriggered ? 0u : uint32_t(EPOLLET));
    if (shared_.exclusive) event.events |= EPOLLEXCLUSIVE;
    event.data.u64 = token(kListenerToken, 0);
    epoll_ctl(epollFd_, EPOLL_CTL_ADD, listenFd_, &event);
  }
  thread_ = std::thread([this] { run(); });
}

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

bool Loop::hasRoom() const { return inbox_.hasRoom() && inboxBytes_.load() < kInboxBytes; }

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
    bool more = listenerAgain_ || (!again_.empty() && !outputBlocked_);
    int timeout = more ? 0 : sweepClock_.waitMs(now_);
    if (acceptRetryAt_ != 0) timeout = std::max(0, std::min(timeout, int(acceptRetryAt_ - now_)));
    if (timeout != 0) {
      sleeping_.store(true, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!inbox_.empty()) timeout = 0;  // a submit raced with going to sleep
    }
    int n = epoll_wait(epollFd_, events, kMaxEvents, timeout);
    sleeping_.store(false, std::memory_order_relaxed);
    now_ = nowMs();
    if (n < 0 && errno != EINTR) break;  // EBADF/EINVAL: nothing sane left to do
    for (int i = 0; i < n; i++) dispatch(events[i]);
    if (outputBlocked_) flushBatch();  // the bridge may have drained and woken us
    if (listenerAgain_ || (acceptRetryAt_ != 0 && now_ >= acceptRetryAt_)) onListener();
    serveAgain();
    applyInbox();
    if (sweepClock_.due(now_)) {
      sweep();
      sweepClock_.done(now_);
    }
    flushDirty();  // after everything that writes, before the batch is sealed (DRAIN records)
    flushBatch();
    freeClosed();
  }
  // Stopping: close everything without reporting (JS is going away).
  for (auto& conn : conns_) {
    if (conn->fd >= 0) {
      close(conn->fd);
      conn->fd = -1;
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
  if (conn->state != ConnState::Open) return;
  if (event.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    readConn(*conn, (event.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
  }
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
  uint32_t slot;
  if (!freeSlots_.empty()) {
    slot = freeSlots_.back();
    freeSlots_.pop_back();
  } else if (conns_.size() < kMaxSlots) {
    slot = uint32_t(conns_.size());
    conns_.push_back(std::make_unique<Conn>());
    conns_.back()->slot = slot;
  } else {
    shared_.connections--;
    close(fd);
    return;
  }
  Conn& conn = *conns_[slot];
  epoll_event event;
  event.events = config_.levelTriggered ? uint32_t(EPOLLIN | EPOLLRDHUP)
                                        : uint32_t(EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  event.data.u64 = token(slot, conn.generation);
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    // ENOSPC (max_user_watches) / ENOMEM: refuse this connection, keep serving.
    int err = errno;
    close(fd);
    shared_.connections--;
    freeSlots_.push_back(slot);
    reportError(err == ENOSPC ? kENOSPC : kENOMEM);
    return;
  }
  conn.fd = fd;
  conn.state = ConnState::Open;
  conn.interest = event.events;
  conn.lastRead = now_;
  if (config_.framing != Framing::Raw) conn.decoder.emplace(config_.framing, config_.maxFrame, Role::Server);
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
  InboxBlock* block;
  while (inbox_.pop(block)) {
    if (block->publish) {
      applyPublish(*block);
    } else if (block->broadcast) {
      inboxBytes_ -= block->broadcast->size();
      for (auto& conn : conns_) {
        if (conn->state == ConnState::Open && !conn->proxy) sendShared(*conn, block->broadcast);
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
    Conn& conn = *conns_[slot];
    if (!conn.queued) continue;
    conn.queued = false;
    if (conn.state != ConnState::Open) continue;
    setInterest(conn);
    readConn(conn, false);
  }
  if (again_.empty()) again_.swap(list), again_.clear();
}

void Loop::freeClosed() {
  for (uint32_t slot : closed_) {
    Conn& conn = *conns_[slot];
    topics_.leaveAll(slot);
    conn.state = ConnState::Free;
    conn.generation = (conn.generation + 1) & ((1u << 23) - 1);
    conn.peerEnded = conn.endRequested = conn.finSent = conn.readPaused = false;
    conn.queued = conn.wantDrain = conn.pingOutstanding = false;
    if (conn.creditPaused) creditPaused_--;
    conn.creditPaused = false;
    conn.toJs = 0;
    conn.messageStart = conn.pingSentAt = conn.closeDeadline = 0;
    conn.closeCode = 0;
    std::string().swap(conn.closeReason);
    conn.decoder.reset();
    conn.proxy.reset();
    conn.announced = true;
    conn.outbox.clear();
    freeSlots_.push_back(slot);
  }
  closed_.clear();
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
