// Syscall wrappers (see sys.h). No state; any thread.
#include "sys.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace edgepoll {

int64_t nowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int makeListener(const std::string& host, int port, int backlog, bool reusePort, bool bindOnly) {
  addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0 || !found) return rc == EAI_SYSTEM ? -errno : -EINVAL;
  int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    freeaddrinfo(found);
    return -err;
  }
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (found->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) {
    int err = errno;
    close(fd);
    freeaddrinfo(found);
    return -err;
  }
  if (reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int err = errno;
    close(fd);
    freeaddrinfo(found);
    return -err;
  }
  if (bind(fd, found->ai_addr, found->ai_addrlen) != 0 || (!bindOnly && listen(fd, backlog) != 0)) {
    int err = errno;
    close(fd);
    freeaddrinfo(found);
    return -err;
  }
  freeaddrinfo(found);
  return fd;
}

int makeUnixListener(const std::string& path, int backlog, uint64_t* dev, uint64_t* ino) {
  sockaddr_un address;
  std::memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  // sun_path needs its terminating NUL; an empty or embedded-NUL path is no file name.
  if (path.empty() || path.find('\0') != std::string::npos) return -EINVAL;
  if (path.size() >= sizeof address.sun_path) return -ENAMETOOLONG;
  std::memcpy(address.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  struct stat info;
  if (stat(path.c_str(), &info) != 0 || listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    unlink(path.c_str());  // bind made the file: a failed listen leaves none behind
    return -err;
  }
  *dev = uint64_t(info.st_dev);
  *ino = uint64_t(info.st_ino);
  return fd;
}

void unlinkUnixListener(const std::string& path, uint64_t dev, uint64_t ino) {
  struct stat info;
  if (lstat(path.c_str(), &info) != 0) return;  // already gone (or not ours to see): nothing to clean
  if (!S_ISSOCK(info.st_mode) || uint64_t(info.st_dev) != dev || uint64_t(info.st_ino) != ino) return;
  unlink(path.c_str());  // failure leaves a stale file, which the next bind reports as EADDRINUSE
}

int boundPort(int fd) {
  sockaddr_storage address;
  socklen_t length = sizeof address;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -errno;
  if (address.ss_family == AF_UNIX) return 0;
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

int acceptOne(int listenFd, sockaddr_storage* address) {
  for (;;) {
    socklen_t length = sizeof *address;
    int fd = accept4(listenFd, reinterpret_cast<sockaddr*>(address), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    if (errno != EINTR) return -errno;
  }
}

std::string addressText(const sockaddr_storage& address, uint32_t* port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (address.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    *port = ntohs(in6->sin6_port);
  } else if (address.ss_family == AF_INET) {
    auto* in4 = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &in4->sin_addr, text, sizeof text);
    *port = ntohs(in4->sin_port);
  } else {
    *port = 0;
  }
  return text;
}

ssize_t readSome(int fd, uint8_t* buffer, size_t length) {
  for (;;) {
    ssize_t n = read(fd, buffer, length);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

ssize_t writeSome(int fd, const iovec* iov, int count) {
  msghdr message;
  std::memset(&message, 0, sizeof message);
  message.msg_iov = const_cast<iovec*>(iov);
  message.msg_iovlen = size_t(count);
  for (;;) {
    ssize_t n = sendmsg(fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

int socketError(int fd) {
  int err = 0;
  socklen_t length = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) != 0) return errno;
  return err;
}

int makeEventFd() { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void signalEventFd(int fd) {
  uint64_t one = 1;
  while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void drainEventFd(int fd) {
  uint64_t value;
  while (read(fd, &value, sizeof value) < 0 && errno == EINTR) {
  }
}

int openReserveFd() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace edgepoll
