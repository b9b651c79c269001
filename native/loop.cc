// The loop thread's iteration, which wires the parts together, and the
// closing of a connection (see loop.h). The parts: acceptor.cc, reader.cc,
// writer.cc, handoff.cc, inbox.cc + fanout.cc, sweep.cc, slots.cc.
#include "loop.h"

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cerrno>

#include "sys.h"

namespace edgepoll {

namespace {
constexpr uint32_t kWakeToken = 0xFFFFFFFEu;
constexpr int kMaxEvents = 256;
constexpr int64_t kCloseFlushMs = 1000;  // a closing connection gets this long to flush
// After this many bytes moved, an idle loop hands freed heap back to the OS
// (at most once per kTrimIntervalMs): glibc keeps freed arena memory, so one
// burst would otherwise stay in RSS for the process's lifetime.
constexpr uint64_t kTrimAfterBytes = 16 * 1024 * 1024;
constexpr int64_t kTrimIntervalMs = 1000;
// V8 frees a collected Buffer's memory on a background thread, possibly
// still at work when JS sees the memory go: a trim asked for waits this long.
constexpr int64_t kTrimAskedDelayMs = 200;

// A quarter of the hard limit leaves room for the answers (and the high-water
// slack) below it; 64 KiB..1 MiB keeps one JS round trip from capping throughput.
uint64_t readWindowFor(const LoopConfig& config) {
  if (config.bounds.readWindow != 0) return config.bounds.readWindow;
  return std::min<uint64_t>(std::max<uint64_t>(config.maxBufferedAmount / 4, config.bounds.readBuffer), 1u << 20);
}
}  // namespace

std::string reasonFor(uint16_t code, const uint8_t* reason, size_t length) {
  if (length > 0) return std::string(reinterpret_cast<const char*>(reason), length);
  return closeReason(code);
}

Loop::Loop(uint32_t index, const LoopConfig& config, LoopShared& shared)
    : index_(index),
      config_(config),
      shared_(shared),
      slots_(config.generationBits, stats_.slots),
      acceptor_(*this),
      reader_(*this),
      writer_(*this),
      handoff_(*this, config.bounds.outRingBatches, readWindowFor(config)),
      inbox_(*this, config.bounds.inboxBlocks, config.bounds.inboxBytes),
      sweeper_(*this) {
  sweeper_.clock().configure(config.heartbeatInterval, config.heartbeatTimeout, config.idleTimeout, config.frameTimeout,
                             config.proxyProtocol ? config.proxyTimeout : 0);
  inputBudget_.limit = size_t(config.maxPartialBytes);
}

Loop::~Loop() {
  if (wakeFd_ >= 0) close(wakeFd_);
  if (epollFd_ >= 0) close(epollFd_);
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
  acceptor_.init();
  reader_.init(config_.bounds.readBuffer);
  return 0;
}

void Loop::start() { thread_ = std::thread([this] { run(); }); }

void Loop::requestStop() {
  stop_ = true;
  if (onCaller_) return;
  wake();
}

void Loop::join() {
  if (thread_.joinable()) thread_.join();
  if (onCaller_ && !closedAll_) {
    closedAll_ = true;
    closeAll();
  }
}

void Loop::wake() {
  if (wakeFd_ >= 0) signalEventFd(wakeFd_);
}

void Loop::trimSoon() {
  trimAsked_.store(true, std::memory_order_release);
  wake();
}

void Loop::stopAccepting() {
  acceptor_.requestStop();
  if (onCaller_) return acceptor_.onWake();  // this is the loop's thread: close it now
  wake();
}

// A loop that is awake applies its inbox before it next waits, so a submit
// only writes the eventfd when the loop may be blocking: under load that is a
// syscall and a wake-up saved per submit. The fences pair with run(): either
// the submitter sees sleeping_, or the loop sees the pushed block.
void Loop::wakeIfSleeping() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed)) wake();
}

// The first half of an iteration: credit back, a blocked batch retried,
// and how long the loop may wait for events (0: work is pending).
int Loop::prepare() {
  handoff_.reclaim();
  if (handoff_.blocked()) handoff_.flush();
  // A full ring holds back reads and accepts alike: the bridge wakes us.
  bool more = !handoff_.blocked() && (acceptor_.again() || reader_.hasAgain());
  int timeout = more ? 0 : sweeper_.clock().waitMs(now_);
  timeout = acceptor_.clampTimeout(timeout, now_);
  if (writer_.retrying() && (timeout < 0 || timeout > Writer::kRetryMs)) timeout = Writer::kRetryMs;
  if (timeout != 0) timeout = trimWhenIdle(timeout);
  return timeout;
}

// About to block for `timeout` ms (not 0): from here a submit must ring the
// eventfd. Returns 0 when one raced with going to sleep.
int Loop::goingToSleep(int timeout) {
  sleeping_.store(true, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!inbox_.empty()) return 0;
  // Pairs with the bridge's fence after it returns a batch: either it
  // sees creditWanted (set before this fence) and wakes us, or we see the return.
  if (handoff_.creditPaused() && handoff_.returnsPending()) return 0;
  return timeout;
}

// The second half: the events, then everything they and JS asked for.
void Loop::serve(const epoll_event* events, int n) {
  for (int i = 0; i < n; i++) dispatch(events[i]);
  if (handoff_.blocked()) handoff_.flush();  // the bridge may have drained and woken us
  if (acceptor_.due(now_, handoff_.blocked())) acceptor_.onReadable();
  reader_.serveAgain();
  inbox_.apply();
  if (sweeper_.clock().due(now_)) sweeper_.sweep();  // a slice; the rest of a pass after the next I/O
  writer_.retry();
  writer_.flushDirty();  // after everything that writes, before the batch is sealed (DRAIN records)
  handoff_.flush();
  freeClosed();
}

void Loop::run() {
  epoll_event events[kMaxEvents];
  now_ = nowMs();
  sweeper_.clock().done(now_);
  while (!stop_.load(std::memory_order_relaxed)) {
    int timeout = prepare();
    if (timeout != 0) timeout = goingToSleep(timeout);
    int n = epoll_wait(epollFd_, events, kMaxEvents, timeout);
    sleeping_.store(false, std::memory_order_relaxed);
    now_ = nowMs();
    if (n < 0 && errno != EINTR) break;  // EBADF/EINVAL: nothing sane left to do
    serve(events, n < 0 ? 0 : n);
  }
  closeAll();
}

void Loop::startOnCaller() {
  now_ = nowMs();
  sweeper_.clock().done(now_);
  onCaller_ = true;
}

int Loop::turn() {
  epoll_event events[kMaxEvents];
  sleeping_.store(false, std::memory_order_relaxed);
  if (stop_.load(std::memory_order_relaxed)) return -1;
  now_ = nowMs();
  prepare();
  int n = epoll_wait(epollFd_, events, kMaxEvents, 0);
  serve(events, n < 0 ? 0 : n);
  return prepare();
}

// Stopping: close everything without reporting (JS is going away).
void Loop::closeAll() {
  for (uint32_t slot : slots_.live()) {
    Conn& conn = slots_[slot];
    if (conn.fd >= 0) {
      close(conn.fd);
      conn.fd = -1;
      shared_.connections--;
    }
  }
  acceptor_.closeListener();
}

void Loop::dispatch(const epoll_event& event) {
  uint32_t slot = uint32_t(event.data.u64);
  uint32_t generation = uint32_t(event.data.u64 >> 32);
  if (slot == kWakeToken) {
    drainEventFd(wakeFd_);
    acceptor_.onWake();
    return;
  }
  if (slot == Acceptor::kToken) return acceptor_.onReadable();
  // Events collected for a connection closed earlier in this iteration (or a
  // slot reused since) are skipped: the generation or the state tells.
  Conn* conn = slots_.lookup(slot, generation);
  if (!conn) return;
  if (event.events & EPOLLOUT) writer_.onWritable(*conn);
  if (conn->state == ConnState::Closing && (event.events & EPOLLIN)) reader_.drainClosing(*conn);
  // Noted before anything can pause this connection's reads: the edge that
  // reported the hang-up is consumed now, and none follows it.
  if (event.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) conn->peerHungUp = true;
  if (conn->state != ConnState::Open) return;
  if (event.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) reader_.read(*conn);
  if (conn->state == ConnState::Open && (event.events & EPOLLERR)) {
    int err = socketError(conn->fd);
    if (err != 0) closeNow(*conn, errnoCode(err), "");
  }
}

void Loop::freeClosed() {
  for (uint32_t slot : closed_) {
    inbox_.forget(slot);
    handoff_.forget(slots_[slot]);
    slots_.release(slot);
  }
  closed_.clear();
  // After a burst the lists keep their capacity; give back what is far
  // beyond what the remaining connections need.
  if (closed_.capacity() > 4096) closed_.shrink_to_fit();
  slots_.shrink();
}

// About to sleep for `timeout` ms: trims the heap once a burst is over or
// when JS asked (trimSoon), or shortens the sleep to the time the next trim
// is allowed.
int Loop::trimWhenIdle(int timeout) {
  if (trimAsked_.exchange(false, std::memory_order_acquire) && trimAt_ == 0) trimAt_ = now_ + kTrimAskedDelayMs;
  uint64_t moved = stats_.bytesIn.load(std::memory_order_relaxed) + stats_.bytesOut.load(std::memory_order_relaxed);
  bool burst = moved - trimmedAtBytes_ >= kTrimAfterBytes;
  if (!burst && trimAt_ == 0) return timeout;
  int64_t allowed = lastTrim_ + kTrimIntervalMs;
  if (!burst) allowed = std::max(allowed, trimAt_);
  int64_t wait = allowed - now_;
  if (wait > 0) return timeout < 0 || timeout > wait ? int(wait) : timeout;
  trimmedAtBytes_ = moved;
  lastTrim_ = now_;
  if (trimAt_ <= now_) trimAt_ = 0;  // one asked for later still happens
  // And a burst's trim is followed by one a second later: what the burst
  // left to others to free (JS's command blocks, Buffers of its last
  // batches) is often freed after the loop went idle, and no more bytes
  // move to trigger another.
  if (burst && trimAt_ == 0) trimAt_ = now_ + kTrimIntervalMs;
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  return timeout;
}

void Loop::reportError(uint16_t code) {
  if (now_ - lastErrorReport_ < 1000) return;  // at most one per second
  lastErrorReport_ = now_;
  Record error;
  error.kind = kRecordError;
  error.code = code;
  handoff_.record(error, nullptr, 0);
}

void Loop::setInterest(Conn& conn) {
  if (!config_.levelTriggered || conn.fd < 0) return;
  // Level-triggered diagnostic mode: register only what we want now, or a
  // writable socket / a socket at EOF would wake us forever.
  uint32_t want = 0;
  if (conn.state == ConnState::Open && !conn.peerEnded && !conn.readPaused && !conn.queued) want |= EPOLLIN | EPOLLRDHUP;
  if (!conn.outbox.empty()) want |= EPOLLOUT;
  if (want == conn.interest) return;
  epoll_event event;
  event.events = want;
  event.data.u64 = SlotTable::tokenFor(conn);
  if (epoll_ctl(epollFd_, EPOLL_CTL_MOD, conn.fd, &event) == 0) conn.interest = want;
}

void Loop::closeAfterFlush(Conn& conn, uint16_t code, std::string reason, bool sendCloseFrame) {
  if (conn.state != ConnState::Open) return;
  if (sendCloseFrame) {
    writer_.sendFrame(conn, 0, kTypeClose, 0, reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
  }
  if (conn.state != ConnState::Open) return;  // the CLOSE frame itself failed
  conn.state = ConnState::Closing;
  conn.closeCode = code;
  conn.closeReason = std::move(reason);
  conn.closeDeadline = now_ + kCloseFlushMs;
  // Bytes after this are never delivered: reads stop with the state (the
  // decoder may be mid-feed here, so it is freed with the slot).
  if (conn.outbox.empty()) return finalize(conn);
  setInterest(conn);
}

void Loop::closeNow(Conn& conn, uint16_t code, std::string reason) {
  if (conn.state != ConnState::Open && conn.state != ConnState::Closing) return;
  conn.closeCode = code;
  conn.closeReason = std::move(reason);
  conn.outbox.clear();
  finalize(conn);
}

void Loop::finalize(Conn& conn) {
  // EPOLL_CTL_DEL before close: the registration belongs to the open file
  // description, which another dup could keep alive.
  epoll_ctl(epollFd_, EPOLL_CTL_DEL, conn.fd, nullptr);
  close(conn.fd);
  conn.fd = -1;
  conn.state = ConnState::Closed;
  shared_.connections--;
  stats_.connections--;
  if (conn.announced) {
    Record r = Handoff::recordFor(conn, kRecordClose);
    r.code = conn.closeCode;
    handoff_.record(r, reinterpret_cast<const uint8_t*>(conn.closeReason.data()), conn.closeReason.size());
  }
  closed_.push_back(conn.slot);
}

}  // namespace edgepoll
