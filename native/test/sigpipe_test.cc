// docs/reliability.md T31 without Node: SIGPIPE at its default (fatal) action,
// then writes to peers that have gone, through every send path of the core:
// writeSome (sendmsg, one and several iovecs), Outbox::flush (gathered
// writes), a live Loop writing to a reset peer (nativeEcho), and a Unix
// socketpair. Each must return EPIPE/ECONNRESET and the process must live.
// Owns: its sockets. Does not own: anything in native/ (it links it).
// Runs on: main, plus the loop thread of the Pool it starts.
// Built and run by scripts/tsan.sh (TSan) and scripts/sanitize.sh (ASan).
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "../outbox.h"
#include "../pool.h"
#include "../sys.h"
#include "harness.h"

namespace edgepoll {
namespace test {
namespace {

class NullDoorbell final : public Doorbell {
 public:
  void ring() override {}
};

// A connected loopback pair: *server is the accepted side.
bool tcpPair(int listenFd, int port, Client& client, int* server) {
  if (!client.connectTo(port, 2000)) return false;
  sockaddr_storage address;
  for (int i = 0; i < 2000; i++) {
    *server = acceptOne(listenFd, &address);
    if (*server >= 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

bool brokenPipe(int err) { return err == EPIPE || err == ECONNRESET; }

// Writes until the kernel reports the peer gone; every write must survive.
void writeUntilBroken(const char* what, int fd, int iovecs) {
  static uint8_t bytes[3][4096];
  iovec iov[3];
  for (int i = 0; i < 3; i++) iov[i] = {bytes[i], sizeof bytes[i]};
  for (int attempt = 0; attempt < 10000; attempt++) {
    ssize_t n = writeSome(fd, iov, iovecs);
    if (n >= 0 || n == -EAGAIN) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    if (!brokenPipe(int(-n))) fail("%s: unexpected errno %d", what, int(-n));
    std::printf("sigpipe: %-36s survived errno %d\n", what, int(-n));
    return;
  }
  fail("%s: the peer never looked gone", what);
}

// The control: the same situation without MSG_NOSIGNAL must kill a child
// with SIGPIPE, or this test could not fail.
void control() {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return fail("socketpair");
  close(pair[1]);
  pid_t child = fork();
  if (child == 0) {
    char byte = 'x';
    for (int i = 0; i < 100; i++) (void)!write(pair[0], &byte, 1);
    _exit(0);
  }
  close(pair[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGPIPE) fail("control: a plain write to a closed peer did not raise SIGPIPE");
  else std::printf("sigpipe: %-36s killed by SIGPIPE, as it should\n", "control: write(2) without the flag");
}

void directWrites() {
  int listenFd = makeListener("127.0.0.1", 0, 16, false);
  int port = boundPort(listenFd);
  for (int iovecs : {1, 3}) {
    for (bool abortive : {false, true}) {
      Client client;
      int server = -1;
      if (!tcpPair(listenFd, port, client, &server)) return fail("no loopback pair");
      client.closeNow(abortive);  // FIN (then RST on our next write) or RST at once
      std::string what = std::string("sendmsg, ") + std::to_string(iovecs) + " iovec(s), " + (abortive ? "RST" : "FIN");
      writeUntilBroken(what.c_str(), server, iovecs);
      close(server);
    }
  }
  // Outbox::flush: many chunks (shared and owned) through one gathered write.
  {
    Client client;
    int server = -1;
    if (!tcpPair(listenFd, port, client, &server)) return fail("no loopback pair");
    client.closeNow(false);
    Outbox outbox;
    auto shared = std::make_shared<const std::vector<uint8_t>>(4096, uint8_t('s'));
    int err = 0;
    for (int round = 0; round < 10000 && err == 0; round++) {
      for (int i = 0; i < 8; i++) {
        outbox.append(shared->data(), 100);
        outbox.appendShared(shared);
      }
      uint64_t written = 0;
      err = outbox.flush(server, &written);
      if (err == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (!brokenPipe(err)) fail("Outbox::flush: errno %d", err);
    else std::printf("sigpipe: %-36s survived errno %d\n", "Outbox::flush (gathered)", err);
    close(server);
  }
  // A Unix socketpair raises SIGPIPE too.
  {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return fail("socketpair");
    close(pair[1]);
    writeUntilBroken("sendmsg on a socketpair", pair[0], 3);
    close(pair[0]);
  }
  close(listenFd);
}

// A running loop echoing (nativeEcho, raw) to clients that send a lot and
// reset without reading: the loop's own send path meets EPIPE/ECONNRESET.
void loopWrites() {
  LoopConfig config;
  config.framing = Framing::Raw;
  config.nativeEcho = true;
  NullDoorbell bell;
  Pool pool(config, 2, false, &bell);
  if (pool.init() != 0) return fail("Pool::init");
  int port = pool.listen("127.0.0.1", 0, 64);
  if (port <= 0) return fail("Pool::listen %d", port);
  std::atomic<bool> done{false};
  // Stands in for the bridge: keeps the batch rings empty.
  std::thread drain([&] {
    while (!done.load()) {
      for (size_t i = 0; i < pool.size(); i++) {
        Batch* batch;
        while (pool.loop(i).outRing().pop(batch)) {
          if (pool.loop(i).stalled.exchange(false)) pool.loop(i).wake();
          if (!pool.loop(i).returnRing().push(batch)) delete batch;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::vector<uint8_t> chunk(256 * 1024, 'e');
  for (int i = 0; i < 20; i++) {
    Client client;
    if (!client.connectTo(port, 2000)) {
      fail("connect %d", i);
      break;
    }
    // Fill both directions: the echo backs up in our receive buffer.
    for (int k = 0; k < 8; k++) {
      if (::send(client.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    client.closeNow(i % 2 == 0);
  }
  // Still alive and still serving.
  Client check;
  uint8_t back[5] = {0};
  if (!check.connectTo(port, 2000) || !check.sendAll(reinterpret_cast<const uint8_t*>("alive"), 5) ||
      check.readRaw(back, 5) <= 0) {
    fail("the loop stopped serving after writes to reset peers");
  } else {
    std::printf("sigpipe: %-36s survived, still echoing\n", "loop echo to 20 reset peers");
  }
  check.closeNow(false);
  pool.stop();
  done = true;
  drain.join();
}

}  // namespace
}  // namespace test
}  // namespace edgepoll

int main() {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &action, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  alarm(120);
  edgepoll::test::control();
  edgepoll::test::directWrites();
  edgepoll::test::loopWrites();
  int failures = edgepoll::test::failures().load();
  if (failures != 0) {
    std::fprintf(stderr, "sigpipe: %d check(s) failed\n", failures);
    return 1;
  }
  std::printf("sigpipe: ok (SIGPIPE at SIG_DFL throughout)\n");
  return 0;
}
