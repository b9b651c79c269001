// One load-generator thread: connect, send pre-encoded requests, validate every
// reply, record latencies. See worker.h for ownership and threads; the read and
// parse path is in worker_read.cc.
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "../protocol.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace edgepoll {

namespace {
// Connects in flight per thread while opening many connections: more would
// only overflow the server's accept queue, and a dropped SYN costs a 1 s retry.
constexpr uint32_t kMaxConnecting = 128;
constexpr uint64_t kRetryNs = 100'000'000;      // after a lost connection
constexpr uint64_t kChurnRetryNs = 10'000'000;  // after a failed churn connect
constexpr int kEvents = 512;

const char* errnoName(int error) {
  switch (error) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EADDRINUSE: return "EADDRINUSE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    default: return nullptr;
  }
}
}  // namespace

uint64_t loadNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

LoadWorker::LoadWorker(const LoadOptions& options, LoadShared& shared, uint32_t firstConn, uint32_t connCount)
    : options_(options), shared_(shared), firstConn_(firstConn), conns_(connCount) {
  uint32_t ring = options.mode == LoadMode::RequestReply || options.mode == LoadMode::Broadcast ? options.depth : 1;
  for (uint32_t i = 0; i < connCount; i++) {
    conns_[i].index = firstConn + i;
    bool sender = options.mode != LoadMode::Broadcast || conns_[i].index < options.senders;
    if (options.mode != LoadMode::Idle && sender) conns_[i].inFlight.resize(ring);
  }
  // The request template: header + pattern payload; seq (and the payload's
  // first bytes) are patched per request, so encoding is one copy.
  if (!options.rawFraming) {
    uint16_t type = options.mode == LoadMode::Broadcast ? uint16_t(2) : options.requestType;
    request_.resize(kHeaderSize + options.payload);
    encodeHeader(request_.data(), 0, type, options.payload, 0);
    for (uint32_t i = 0; i < options.payload; i++) request_[kHeaderSize + i] = loadPattern(i);
  }
  scratch_.resize(std::max<size_t>(256 * 1024, 2 * (kHeaderSize + options.payload) + 64 * 1024));
}

LoadWorker::~LoadWorker() { join(); }

void LoadWorker::start() { thread_ = std::thread([this] { run(); }); }

void LoadWorker::join() {
  if (thread_.joinable()) thread_.join();
}

void LoadWorker::run() {
  epollFd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epollFd_ < 0) {
    noteError("epoll_create1", errno);
    counters_.errors.add();
    return;
  }
  for (auto& c : conns_) queueConnect(c, 0);
  epoll_event events[kEvents];
  for (;;) {
    uint64_t now = loadNowNs();
    maintain(now);
    if (phase_ == LoadPhase::Stop) break;
    // Timers (idle PINGs, broadcast pacing, connect retries) need a short
    // wake-up; a pure request/reply load is driven by its own replies.
    bool timers = options_.mode == LoadMode::Idle || options_.mode == LoadMode::Broadcast || !connectQueue_.empty();
    int n = epoll_wait(epollFd_, events, kEvents, timers ? 2 : 20);
    if (n < 0) {
      if (errno == EINTR) continue;
      noteError("epoll_wait", errno);
      counters_.errors.add();
      break;
    }
    now = loadNowNs();
    for (int i = 0; i < n; i++) {
      uint32_t local = uint32_t(events[i].data.u64);
      uint32_t generation = uint32_t(events[i].data.u64 >> 32);
      LoadConn& c = conns_[local];
      // The connection may have been closed (and even reopened on the same
      // slot) by an earlier event of this batch: its generation moved on.
      if (c.generation != generation || c.fd < 0) continue;
      onEvent(c, events[i].events, now);
    }
  }
  for (auto& c : conns_) close(c);
  ::close(epollFd_);
  epollFd_ = -1;
  rusage usage;
  if (getrusage(RUSAGE_THREAD, &usage) == 0) {
    cpuSeconds_ = double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                  double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  }
}

void LoadWorker::maintain(uint64_t now) {
  phase_ = shared_.current();
  if (phase_ == LoadPhase::Stop) return;
  while (!connectQueue_.empty()) {
    LoadConn& c = conns_[connectQueue_.front()];
    if (c.retryAtNs > now) break;
    if (options_.mode != LoadMode::Churn && connecting_ >= kMaxConnecting) break;
    connectQueue_.pop_front();
    c.queued = false;
    if (c.state == LoadConnState::Closed) connect(c, now);
  }
  if (options_.mode == LoadMode::Idle && phase_ != LoadPhase::Ramp && !conns_.empty()) {
    // Every connection is pinged once per interval, spread evenly over it,
    // so the server sees a steady trickle rather than a burst.
    uint64_t interval = uint64_t(options_.intervalMs) * 1'000'000u;
    if (pingCycleStartNs_ == 0) pingCycleStartNs_ = now;
    uint64_t size = conns_.size();
    uint64_t target = std::min<uint64_t>(size, size * (now - pingCycleStartNs_) / interval);
    for (; pingCursor_ < target; pingCursor_++) {
      LoadConn& c = conns_[pingCursor_];
      if (c.state == LoadConnState::Open) sendPing(c, now);
    }
    if (now - pingCycleStartNs_ >= interval) {
      pingCycleStartNs_ += interval;
      pingCursor_ = 0;
    }
  }
  if (options_.mode == LoadMode::Broadcast && phase_ != LoadPhase::Ramp) {
    for (auto& c : conns_) {
      if (c.index >= options_.senders) break;
      if (c.state == LoadConnState::Open) refill(c, now);
    }
  }
}

void LoadWorker::queueConnect(LoadConn& c, uint64_t at) {
  c.retryAtNs = at;
  if (!c.queued) {
    c.queued = true;
    connectQueue_.push_back(uint32_t(&c - conns_.data()));
  }
}

void LoadWorker::connect(LoadConn& c, uint64_t now) {
  uint64_t retry = now + (options_.mode == LoadMode::Churn ? kChurnRetryNs : kRetryNs);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    noteError("socket", errno);
    counters_.connectErrors.add();
    queueConnect(c, retry);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (options_.sourceAddresses > 0) {
    // Many connections (or a churn that leaves TIME_WAIT behind) exhaust one
    // source address's ephemeral ports; 127.0.0.2.. each bring their own.
    // IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(), which
    // picks it for the full 4-tuple instead of reserving it for this address.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = htonl((127u << 24) | (2u + c.index % options_.sourceAddresses));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) < 0) {
      noteError("bind", errno);
      counters_.connectErrors.add();
      ::close(fd);
      queueConnect(c, retry);
      return;
    }
  }
  int result;
  do {
    result = ::connect(fd, reinterpret_cast<const sockaddr*>(&options_.target), sizeof options_.target);
  } while (result < 0 && errno == EINTR);
  if (result < 0 && errno != EINPROGRESS) {
    noteError("connect", errno);
    counters_.connectErrors.add();
    ::close(fd);
    queueConnect(c, retry);
    return;
  }
  c.fd = fd;
  c.state = LoadConnState::Connecting;
  c.startNs = now;
  connecting_++;
  epoll_event event{};
  // Edge-triggered: one wake-up per arrival, and EPOLLOUT only when the send
  // buffer goes from full to not full (or the connect completes).
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = (uint64_t(c.generation) << 32) | uint32_t(&c - conns_.data());
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, fd, &event) < 0) {
    noteError("epoll_ctl", errno);
    counters_.connectErrors.add();
    close(c);
    queueConnect(c, retry);
  }
}

void LoadWorker::onEvent(LoadConn& c, uint32_t events, uint64_t now) {
  if (c.state == LoadConnState::Connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) error = errno;
    if (error != 0) {
      fail(c, "connect", error, now);
      return;
    }
    onOpen(c, now);
    if (c.state != LoadConnState::Open) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    uint32_t generation = c.generation;
    onReadable(c, now);
    if (c.generation != generation || c.state != LoadConnState::Open) return;
  }
  if ((events & EPOLLOUT) && c.outOffset < c.out.size()) flush(c);
}

void LoadWorker::onOpen(LoadConn& c, uint64_t now) {
  c.state = LoadConnState::Open;
  connecting_--;
  counters_.connects.add();
  if (options_.mode == LoadMode::Broadcast) {
    // A connect completes when the kernel queues it, before the server has
    // it (node:cluster even hands it over by IPC), and a BROADCAST reaches
    // only the connections the server has. A PING answered by the server
    // proves it has this one, so the ramp counts it open only then.
    sendPing(c, now);
    return;
  }
  counters_.open.add();
  if (options_.mode == LoadMode::Churn) {
    appendRequest(c, now);
    flush(c);
  } else if (options_.mode != LoadMode::Idle) {
    refill(c, now);
  }
}

bool LoadWorker::broadcastAllowed() const {
  // Paced by delivery: a sender may run at most depth x senders BROADCASTs
  // ahead of what the receivers (all threads) have read, so neither the
  // server's outboxes nor the kernel's buffers fill without bound.
  uint64_t pushes = 0, receivers = 0;
  for (LoadCounters* counters : shared_.all) {
    pushes += counters->pushesTotal.get();
    receivers += counters->open.get();
  }
  uint64_t window = uint64_t(options_.depth) * options_.senders;
  uint64_t sent = shared_.broadcastsSent.load(std::memory_order_relaxed);
  if (sent < window || receivers == 0) return true;
  return pushes >= (sent - window) * receivers;
}

void LoadWorker::refill(LoadConn& c, uint64_t now) {
  if (options_.mode == LoadMode::RequestReply) {
    while (c.inFlightCount < options_.depth) appendRequest(c, now);
  } else if (options_.mode == LoadMode::Broadcast && c.index < options_.senders && phase_ != LoadPhase::Ramp) {
    while (c.inFlightCount < options_.depth) {
      if (options_.rate > 0) {
        if (now < nextBroadcastNs_) break;
        nextBroadcastNs_ = std::max(nextBroadcastNs_, now) + 1'000'000'000u / options_.rate;
      } else if (!broadcastAllowed()) {
        // Receivers still short of pushes a second after the last BROADCAST:
        // the server lost deliveries. Count it and go on rather than stall.
        if (now - lastBroadcastNs_ < 1'000'000'000u) break;
        counters_.errors.add();
        noteError("BROADCAST deliveries missing: receivers got fewer pushes than were sent", 0);
      }
      lastBroadcastNs_ = now;
      appendRequest(c, now);
    }
  }
  if (c.outOffset < c.out.size()) flush(c);
}

void LoadWorker::appendRequest(LoadConn& c, uint64_t now) {
  uint64_t key;
  if (options_.rawFraming) {
    for (uint32_t i = 0; i < options_.payload; i++) c.out.push_back(loadPattern(c.rawSent + i));
    c.rawSent += options_.payload;
    key = c.rawSent;
  } else {
    size_t offset = c.out.size();
    c.out.insert(c.out.end(), request_.begin(), request_.end());
    uint32_t seq = c.nextSeq++;
    if (seq == 0) seq = c.nextSeq++;  // 0 means "no reply wanted"
    uint8_t* frame = c.out.data() + offset;
    putU32(frame + 8, seq);
    if (options_.mode == LoadMode::Broadcast) {
      if (options_.payload >= 8) memcpy(frame + kHeaderSize, &now, 8);
      shared_.broadcastsSent.fetch_add(1, std::memory_order_relaxed);
    } else if (options_.payload >= 4) {
      putU32(frame + kHeaderSize, seq);
    }
    key = seq;
  }
  uint32_t capacity = uint32_t(c.inFlight.size());
  c.inFlight[(c.inFlightHead + c.inFlightCount) % capacity] = LoadInFlight{key, now};
  c.inFlightCount++;
  if (recording()) counters_.sent.add();
}

void LoadWorker::sendPing(LoadConn& c, uint64_t now) {
  if (c.pingSeq != 0) counters_.missedPongs.add();
  uint32_t seq = c.nextSeq++;
  if (seq == 0) seq = c.nextSeq++;
  c.pingSeq = seq;
  c.pingSentNs = now;
  uint32_t length = std::min<uint32_t>(options_.payload, kMaxPingPayload);
  size_t offset = c.out.size();
  c.out.resize(offset + kHeaderSize + length);
  uint8_t* frame = c.out.data() + offset;
  encodeHeader(frame, 0, kTypePing, length, seq);
  for (uint32_t i = 0; i < length; i++) frame[kHeaderSize + i] = loadPattern(i);
  if (length >= 4) putU32(frame + kHeaderSize, seq);
  if (recording()) counters_.pings.add();
  flush(c);
}

void LoadWorker::flush(LoadConn& c) {
  while (c.outOffset < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.outOffset, c.out.size() - c.outOffset, MSG_NOSIGNAL);
    if (n >= 0) {
      c.outOffset += size_t(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // EPOLLOUT (edge) resumes
    fail(c, "send", errno, loadNowNs());
    return;
  }
  c.out.clear();
  c.outOffset = 0;
}

void LoadWorker::noteError(const char* what, int error) {
  if (!firstError_.empty()) return;
  firstError_ = what;
  if (error != 0) {
    const char* name = errnoName(error);
    firstError_ += ": ";
    firstError_ += name ? name : ("errno " + std::to_string(error)).c_str();
  }
}

void LoadWorker::fail(LoadConn& c, const char* what, int error, uint64_t now) {
  noteError(what, error);
  if (c.state == LoadConnState::Connecting) {
    counters_.connectErrors.add();
  } else {
    counters_.errors.add();
  }
  close(c);
  if (phase_ != LoadPhase::Stop) {
    queueConnect(c, now + (options_.mode == LoadMode::Churn ? kChurnRetryNs : kRetryNs));
  }
}

void LoadWorker::close(LoadConn& c) {
  if (c.fd < 0) return;
  ::close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  c.generation++;
  // In broadcast mode a connection counts as open once its handshake PING is answered (onOpen).
  bool counted = !(options_.mode == LoadMode::Broadcast && c.pingSeq != 0);
  if (c.state == LoadConnState::Open && counted) counters_.open.sub();
  if (c.state == LoadConnState::Connecting) connecting_--;
  c.state = LoadConnState::Closed;
  c.in.clear();
  c.out.clear();
  c.outOffset = 0;
  c.inFlightHead = c.inFlightCount = 0;
  c.pingSeq = 0;
  c.rawSent = c.rawReceived = 0;
}

}  // namespace edgepoll
