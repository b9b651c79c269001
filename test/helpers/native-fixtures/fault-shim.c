// LD_PRELOAD fault injection for the native engine's syscalls (built by
// test/engine.native.faults.test.ts; the process under test runs no node:net
// server, so every accept4 and every listener registration is the addon's).
//   EDGEPOLL_FAULT_ACCEPT=ENOBUFS:N   the first N accept4 calls fail (ENOBUFS or ENOMEM)
//   EDGEPOLL_FAULT_LISTENER_ADD=ENOMEM  epoll_ctl(ADD) of a listening socket fails
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static int errnoNamed(const char* name) {
  if (strncmp(name, "ENOBUFS", 7) == 0) return ENOBUFS;
  if (strncmp(name, "ENOMEM", 6) == 0) return ENOMEM;
  if (strncmp(name, "ENOSPC", 6) == 0) return ENOSPC;
  return EIO;
}

static int acceptFailures = 0;  // calls failed so far

int accept4(int fd, struct sockaddr* address, socklen_t* length, int flags) {
  static int (*real)(int, struct sockaddr*, socklen_t*, int);
  if (!real) real = (int (*)(int, struct sockaddr*, socklen_t*, int))dlsym(RTLD_NEXT, "accept4");
  const char* spec = getenv("EDGEPOLL_FAULT_ACCEPT");
  if (spec) {
    const char* colon = strchr(spec, ':');
    int limit = colon ? atoi(colon + 1) : 1;
    if (__atomic_fetch_add(&acceptFailures, 1, __ATOMIC_SEQ_CST) < limit) {
      errno = errnoNamed(spec);
      return -1;
    }
  }
  return real(fd, address, length, flags);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) {
  static int (*real)(int, int, int, struct epoll_event*);
  if (!real) real = (int (*)(int, int, int, struct epoll_event*))dlsym(RTLD_NEXT, "epoll_ctl");
  const char* spec = getenv("EDGEPOLL_FAULT_LISTENER_ADD");
  if (spec && op == EPOLL_CTL_ADD) {
    int listening = 0;
    socklen_t size = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0 && listening) {
      errno = errnoNamed(spec);
      return -1;
    }
  }
  return real(epfd, op, fd, event);
}
