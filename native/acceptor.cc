// Acceptor (see acceptor.h): the accept loop, its EMFILE/ENOBUFS back-off and
// the admission of a new connection. Loop thread, except where acceptor.h says.
#include "acceptor.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "loop.h"
#include "sys.h"

namespace edgepoll {

namespace {
constexpr int kAcceptBudget = 256;
constexpr int64_t kAcceptBackoffMs = 100;  // out of fds or memory: retry accepting this often, never spin

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

Acceptor::~Acceptor() {
  if (listenFd_ >= 0) close(listenFd_);
  if (reserveFd_ >= 0) close(reserveFd_);
}

void Acceptor::init() { reserveFd_ = openReserveFd(); }

int Acceptor::setListener(int fd) {
  epoll_event event;
  // Edge-triggered: accept until EAGAIN (or budget → again), so an fd
  // shortage never turns into a busy loop on a listener that stays readable.
  event.events = EPOLLIN | (loop_.config_.levelTriggered ? 0u : uint32_t(EPOLLET));
  if (loop_.shared_.exclusive) event.events |= EPOLLEXCLUSIVE;
  event.data.u64 = kToken;
  // ENOMEM/ENOSPC here would leave a server that listens and never accepts.
  if (epoll_ctl(loop_.epollFd_, EPOLL_CTL_ADD, fd, &event) != 0) return errno;
  listenFd_ = fd;
  accepting_ = true;
  return 0;
}

void Acceptor::dropListener() {
  if (listenFd_ < 0) return;
  epoll_ctl(loop_.epollFd_, EPOLL_CTL_DEL, listenFd_, nullptr);
  close(listenFd_);
  listenFd_ = -1;
  accepting_ = false;
}

void Acceptor::onWake() {
  if (!stop_ || listenFd_ < 0) return;
  epoll_ctl(loop_.epollFd_, EPOLL_CTL_DEL, listenFd_, nullptr);
  close(listenFd_);
  listenFd_ = -1;
  again_ = false;
  accepting_ = false;
}

void Acceptor::closeListener() {
  if (listenFd_ >= 0) close(listenFd_);
  listenFd_ = -1;
  accepting_ = false;
}

void Acceptor::onReadable() {
  again_ = false;
  retryAt_ = 0;
  if (listenFd_ < 0) return;
  for (int i = 0; i < kAcceptBudget; i++) {
    if (loop_.handoff_.blocked()) {
      // JS is behind: an accept would only add an OPEN (and soon a CLOSE)
      // record to a batch nobody takes. The backlog keeps the connections;
      // a successful Handoff::flush lets Loop::run come back here.
      again_ = true;
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
      loop_.stats_.acceptErrors++;
      loop_.reportError(err == EMFILE ? kEMFILE : kENFILE);
      // Out of fds: spend the reserve to accept and drop one pending
      // connection, so the queue drains instead of the listener staying hot.
      // Back-off: whatever the trick achieved, look again in 100 ms rather
      // than spin, and rather than wait for an edge that may never come.
      retryAt_ = loop_.now_ + kAcceptBackoffMs;
      if (reserveFd_ < 0) reserveFd_ = openReserveFd();  // another loop may have taken the fd we freed
      if (reserveFd_ < 0) return;
      close(reserveFd_);
      int dropped = acceptOne(listenFd_, &address);
      if (dropped >= 0) close(dropped);
      reserveFd_ = openReserveFd();
      if (dropped < 0) return;
      continue;
    }
    loop_.stats_.acceptErrors++;
    if (err == ENOBUFS || err == ENOMEM) {
      // The kernel is short of memory: the connection stays in the backlog
      // and raises no new edge, so look again after the back-off.
      loop_.reportError(kENOMEM);
      retryAt_ = loop_.now_ + kAcceptBackoffMs;
    }
    return;
  }
  again_ = true;
}

void Acceptor::adopt(int fd, const sockaddr_storage& address) {
  const LoopConfig& config = loop_.config_;
  LoopStats& stats = loop_.stats_;
  std::atomic<uint32_t>& connections = loop_.shared_.connections;
  if (config.proxyProtocol && !trustedPeer(address)) {
    // Only trusted proxies may name the client (spec §3): abort before any byte is read.
    stats.proxyErrors++;
    stats.protocolErrors++;
    close(fd);
    return;
  }
  uint32_t before = connections.fetch_add(1);
  if (config.maxConnections != 0 && before >= config.maxConnections) {
    connections--;
    stats.rejected++;
    if (config.framing == Framing::Frame) {
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
  Conn* taken = loop_.slots_.take();
  if (!taken) {
    // Every slot in use, or no memory for the Conn: refuse this one, keep serving.
    connections--;
    close(fd);
    loop_.reportError(kENOMEM);
    return;
  }
  Conn& conn = *taken;
  epoll_event event;
  event.events = config.levelTriggered ? uint32_t(EPOLLIN | EPOLLRDHUP)
                                       : uint32_t(EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  event.data.u64 = SlotTable::tokenFor(conn);
  if (epoll_ctl(loop_.epollFd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    // ENOSPC (max_user_watches) / ENOMEM: refuse this connection, keep serving.
    int err = errno;
    close(fd);
    connections--;
    loop_.slots_.release(conn.slot);
    loop_.reportError(err == ENOSPC ? kENOSPC : kENOMEM);
    return;
  }
  conn.fd = fd;
  conn.state = ConnState::Open;
  conn.interest = event.events;
  conn.lastRead = loop_.now_;
  if (config.framing != Framing::Raw) conn.decoder.emplace(config.framing, config.maxFrame, Role::Server, &loop_.inputBudget_);
  stats.accepted++;
  stats.connections++;
  uint32_t port = 0;
  std::string text = addressText(address, &port);
  if (config.proxyProtocol) {
    // OPEN waits for the header, which names the client (Reader::deliverProxy).
    conn.announced = false;
    conn.proxy = std::make_unique<ProxyPending>();
    conn.proxy->peerAddress = std::move(text);
    conn.proxy->peerPort = port;
    conn.proxy->deadline = loop_.now_ + config.proxyTimeout;
    return;
  }
  loop_.reader_.announce(conn, text, port);
}

bool Acceptor::trustedPeer(const sockaddr_storage& address) const {
  uint8_t bytes[16] = {0};
  if (address.ss_family == AF_INET) {
    bytes[10] = bytes[11] = 0xFF;
    std::memcpy(bytes + 12, &reinterpret_cast<const sockaddr_in*>(&address)->sin_addr, 4);
  } else if (address.ss_family == AF_INET6) {
    std::memcpy(bytes, &reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr, 16);
  } else {
    return address.ss_family == AF_UNIX && loop_.config_.proxyTrustUnix;  // no address to match: trusted only by "unix"
  }
  return proxyTrusted(loop_.config_.proxyTrusted, bytes);
}

}  // namespace edgepoll
