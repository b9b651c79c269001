// LD_PRELOAD shim for test/engine.native.bounds.test.ts: the native loops'
// sendmsg (flags exactly MSG_NOSIGNAL | MSG_DONTWAIT; libuv's own writes do
// not use them) fails with ENOBUFS on every other call among the first
// 2 × $EDGEPOLL_TEST_ENOBUFS calls, as under kernel memory pressure.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

static ssize_t (*real_sendmsg)(int, const struct msghdr*, int);
static int calls;

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  if (!real_sendmsg) real_sendmsg = (ssize_t (*)(int, const struct msghdr*, int))dlsym(RTLD_NEXT, "sendmsg");
  if (flags == (MSG_NOSIGNAL | MSG_DONTWAIT)) {
    const char* text = getenv("EDGEPOLL_TEST_ENOBUFS");
    int limit = text ? atoi(text) : 0;
    int n = __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
    if (n < 2 * limit && n % 2 == 0) {
      errno = ENOBUFS;
      return -1;
    }
  }
  return real_sendmsg(fd, msg, flags);
}
