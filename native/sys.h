// Thin syscall wrappers for the loops: sockets, eventfd, clocks.
// Owns: nothing (no state). Does not own: any fd it returns (the caller does).
// Runs on: any thread. Every wrapper retries EINTR and reports errors as a
// negative errno instead of throwing, so callers decide what an error means.
#pragma once
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace edgepoll {

// Milliseconds of CLOCK_MONOTONIC_COARSE: one vDSO read, good to ~4 ms, which
// is all the coarse timeouts need.
int64_t nowMs();

// Creates a bound, listening, non-blocking socket. Returns the fd, or -errno
// (EADDRINUSE, EACCES, EINVAL for a host that does not parse, ...).
// With bindOnly the socket is bound but not listening (a probe). An IPv6
// wildcard ('::') is dual-stack whatever net.ipv6.bindv6only says, as node:net.
int makeListener(const std::string& host, int port, int backlog, bool reusePort, bool bindOnly = false);
// A listening, non-blocking Unix stream socket at `path` (bound, so the file
// exists). -errno: EADDRINUSE when the path exists (a stale file is not
// removed, as node:net), ENAMETOOLONG past sun_path, EACCES, ...
// *dev/*ino identify the socket file it made (so only that file is unlinked).
int makeUnixListener(const std::string& path, int backlog, uint64_t* dev, uint64_t* ino);
// Unlinks `path` if it is still the socket file (dev, ino) that
// makeUnixListener made; anything else there is left alone.
void unlinkUnixListener(const std::string& path, uint64_t dev, uint64_t ino);
// The port a bound socket got (for port 0), 0 for a Unix socket, or -errno.
int boundPort(int fd);
// accept4(SOCK_NONBLOCK|SOCK_CLOEXEC) + TCP_NODELAY. Returns the fd or -errno.
int acceptOne(int listenFd, sockaddr_storage* address);
// "127.0.0.1" / "::1" for an accepted peer; *port gets the remote port.
// A Unix socket peer has no address: "" and port 0 (node:net says undefined).
std::string addressText(const sockaddr_storage& address, uint32_t* port);

// read(2) without EINTR: bytes read, 0 at end of stream, or -errno.
ssize_t readSome(int fd, uint8_t* buffer, size_t length);
// sendmsg(MSG_NOSIGNAL|MSG_DONTWAIT) without EINTR: bytes written or -errno.
ssize_t writeSome(int fd, const iovec* iov, int count);
// The pending socket error (SO_ERROR), 0 if none.
int socketError(int fd);

// Non-blocking eventfd used to wake a loop from another thread.
int makeEventFd();
// Safe from any thread. A full counter (EAGAIN) still leaves the fd readable.
void signalEventFd(int fd);
void drainEventFd(int fd);

// Opens the spare descriptor that lets a loop accept-and-close connections
// when the process is out of fds (EMFILE): -1 if even that fails.
int openReserveFd();

}  // namespace edgepoll
