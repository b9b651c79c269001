// ThreadSanitizer (and ASan/LSan) harness for the native core without Node
// (RELIABILITY.md T27, T28, T31, T36; built by scripts/tsan.sh and
// scripts/sanitize.sh). It drives a Pool of 2..4 loops on a loopback port:
//  - a "JS" thread stands in for the bridge: it drains every loop's batch
//    ring, recycles batches through the return ring, clears `stalled` and
//    wakes the loop (as Bridge::drain does), and answers requests, ENDs,
//    broadcasts, DESTROY/CLOSE and stale-generation commands through
//    Pool::submit / Pool::broadcast (the inbox rings); it stalls now and then
//    so the batch rings fill;
//  - client threads connect, pipeline requests, answer PINGs, half-close,
//    reset, and reconnect all the time (fd and slot reuse: ABA);
//  - each round ends with Pool::stop() while that traffic flows.
// Checks: every reply goes to the connection that asked, in order; no stale
// command reaches a newer connection; records follow OPEN … CLOSE per slot.
// Owns: its threads and sockets. Does not own: anything in native/ (it only
// links it). Runs on: main + the JS thread + client threads.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <unordered_map>

#include "../errors.h"
#include "../pool.h"
#include "harness.h"

namespace edgepoll {
namespace test {
namespace {

constexpr uint16_t kTypeRequest = 1;
constexpr uint16_t kTypeBroadcast = 2;
constexpr uint16_t kTypeStale = 3;  // only ever sent to dead connection ids

using Clock = std::chrono::steady_clock;

// The bridge's pending flag, without Node: at most one wake-up is owed.
class TestDoorbell final : public Doorbell {
 public:
  void ring() override {
    if (!pending_.exchange(true)) rings_++;
  }
  bool take() { return pending_.exchange(false); }
  uint64_t rings() const { return rings_.load(); }

 private:
  std::atomic<bool> pending_{false};
  std::atomic<uint64_t> rings_{0};
};

struct RoundConfig {
  const char* name;
  uint32_t threads;
  bool exclusive;
  bool levelTriggered;
  bool stopAcceptingHalfway;
  int clients;
  int pushers;
  int millis;
};

struct Shared {
  std::atomic<int> port{0};
  std::atomic<bool> serverStopping{false};
  std::atomic<bool> clientsStop{false};
  std::atomic<uint64_t> replies{0}, broadcasts{0}, connections{0}, pings{0};
};

std::string requestPayload(int client, uint64_t connection, uint32_t seq, size_t padding) {
  std::string text = "c" + std::to_string(client) + "." + std::to_string(connection) + "." + std::to_string(seq);
  text.append(padding, 'x');
  return text;
}

// A fire-hose: pushes (seq 0) without waiting for anything, so batches keep
// coming while the JS thread stalls and the batch rings fill up.
void pusherThread(int id, Shared& shared) {
  std::vector<uint8_t> burst;
  for (int i = 0; i < 16; i++) {
    auto bytes = frame(0, kTypeRequest, 0, std::string(512, char('a' + id % 26)));
    burst.insert(burst.end(), bytes.begin(), bytes.end());
  }
  uint8_t sink[65536];
  while (!shared.clientsStop.load()) {
    Client client;
    int port = shared.port.load();
    if (port == 0 || !client.connectTo(port, 4000)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    shared.connections++;
    for (int i = 0; i < 2000 && !shared.clientsStop.load(); i++) {
      if (::send(client.fd(), burst.data(), burst.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) break;
      // Swallow PINGs and broadcasts so we are never a slow consumer.
      while (::recv(client.fd(), sink, sizeof sink, MSG_DONTWAIT) > 0) {
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    client.closeNow(id % 2 == 0);
  }
}

// One client thread: connections one after another until told to stop.
void clientThread(int id, Shared& shared) {
  std::mt19937 rng(uint32_t(id) * 7919u + 17u);
  uint64_t connection = 0;
  while (!shared.clientsStop.load()) {
    Client client;
    int port = shared.port.load();
    if (port == 0 || !client.connectTo(port, 4000)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    connection++;
    shared.connections++;
    uint32_t seq = 0;
    uint32_t expect = 1;
    int requests = 1 + int(rng() % 12);
    int ending = int(rng() % 8);
    bool alive = true;
    // Reads until `expect` passes `upTo`; false when the connection ended.
    auto readReplies = [&](uint32_t upTo, bool toEof) -> bool {
      while (toEof || expect <= upTo) {
        uint8_t flags;
        uint16_t type;
        uint32_t got;
        std::string payload;
        if (!client.readFrame(&flags, &type, &got, &payload)) {
          if ((errno == EAGAIN || errno == EWOULDBLOCK) && !shared.serverStopping.load()) {
            if (toEof) fail("client %d: no EOF within 4 s after a half-close", id);
            else fail("client %d: no reply to seq %u within 4 s", id, expect);
          }
          return toEof;
        }
        if (type == kTypePing) {
          shared.pings++;
          if (!toEof) client.sendAll(frame(0, kTypePong, got, payload));
        } else if (type == kTypeBroadcast && got == 0) {
          shared.broadcasts++;
        } else if (type == kTypeStale) {
          fail("client %d: a command for a dead connection id reached a live one (%s)", id, payload.c_str());
        } else if (type == kTypeClose) {
          return false;  // the JS thread closed us
        } else if (type == kTypeRequest && (flags & kFlagResponse)) {
          std::string want = requestPayload(id, connection, expect, (expect * 37) % 1500);
          if (got != expect || payload != want) {
            fail("client %d: reply seq %u (wanted %u) payload %.40s (wanted %.40s)", id, got, expect,
                 payload.c_str(), want.c_str());
            return false;
          }
          expect++;
          shared.replies++;
        } else if (type != kTypeGoaway) {
          fail("client %d: unexpected frame type %u flags %u", id, type, flags);
          return false;
        }
      }
      return true;
    };
    for (int r = 0; r < requests && alive && !shared.clientsStop.load(); r++) {
      int pipeline = (rng() % 4 == 0) ? 1 + int(rng() % 8) : 1;
      std::vector<uint8_t> burst;
      for (int p = 0; p < pipeline; p++) {
        seq++;
        auto bytes = frame(0, kTypeRequest, seq, requestPayload(id, connection, seq, (seq * 37) % 1500));
        burst.insert(burst.end(), bytes.begin(), bytes.end());
      }
      if (!client.sendAll(burst)) break;
      if (ending == 2 && r == requests - 1) break;  // leave replies unread: RST on close
      alive = readReplies(seq, false);
    }
    if (!alive) continue;
    switch (ending) {
      case 0:
      case 2:
        client.closeNow(true);
        break;
      case 1:
        // Half-close: the JS thread answers END with END; we must see EOF.
        shutdown(client.fd(), SHUT_WR);
        readReplies(seq, true);
        break;
      case 3:
        client.sendAll(frame(0, kTypePing, 7, "tsan"));
        readReplies(seq, false);
        break;
      case 4:
        // Idle past the heartbeat interval: the loop PINGs, we answer.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        seq++;
        client.sendAll(frame(0, kTypeRequest, seq, requestPayload(id, connection, seq, (seq * 37) % 1500)));
        readReplies(seq, false);
        break;
      default:
        break;
    }
  }
}

// The thread that plays Node's JS thread: owns the Pool and is the only
// producer of every inbox ring, the only consumer of every batch ring.
class JsThread {
 public:
  JsThread(const RoundConfig& round, Shared& shared) : round_(round), shared_(shared), rng_(round.threads * 31u) {}

  void run() {
    LoopConfig config;
    config.framing = Framing::Frame;
    config.maxFrame = 64 * 1024;
    config.heartbeatInterval = 150;
    config.heartbeatTimeout = 5000;
    config.levelTriggered = round_.levelTriggered;
    config.highWaterMark = 64 * 1024;
    // The scripts run a second pass with every bound shrunk (ring of 2,
    // tiny inbox, …): full rings and refused submits all the time.
    const char* tiny = std::getenv("EDGEPOLL_DEBUG_TINY_BOUNDS");
    if (tiny && tiny[0] == '1') config.bounds = LoopBounds::tiny();
    pool_ = std::make_unique<Pool>(config, round_.threads, round_.exclusive, &bell_);
    int err = pool_->init();
    if (err != 0) return fail("%s: Pool::init errno %d", round_.name, err);
    int port = pool_->listen("127.0.0.1", 0, 512);
    if (port <= 0) return fail("%s: Pool::listen %d", round_.name, port);
    open_.resize(pool_->size());
    stale_.resize(pool_->size());
    pending_.resize(pool_->size());
    shared_.port = port;
    auto start = Clock::now();
    auto end = start + std::chrono::milliseconds(round_.millis);
    bool stoppedAccepting = false;
    while (Clock::now() < end) {
      if (round_.stopAcceptingHalfway && !stoppedAccepting && Clock::now() > start + std::chrono::milliseconds(round_.millis / 2)) {
        pool_->stopAccepting();
        stoppedAccepting = true;
      }
      bool rung = bell_.take();
      drain();
      chaos();
      flushCommands();
      if (!rung) std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    // Stop while the clients keep sending: the loops close every fd unreported.
    shared_.serverStopping = true;
    pool_->stop();
    uint64_t ringFull = 0;
    for (size_t i = 0; i < pool_->size(); i++) ringFull += pool_->loop(i).stats().ringFull.load();
    pool_.reset();  // frees whatever the rings still hold
    std::printf("tsan harness: %-28s opens %6llu closes %6llu messages %7llu pushes %7llu ring-full %llu\n",
              round_.name, (unsigned long long)opens_, (unsigned long long)closes_, (unsigned long long)messages_,
              (unsigned long long)pushes_, (unsigned long long)ringFull);
  }

 private:
  struct Known {
    uint32_t generation;
    bool destroyed;
  };

  void drain() {
    for (size_t i = 0; i < pool_->size(); i++) {
      Loop& loop = pool_->loop(i);
      Batch* batch;
      int taken = 0;
      while (taken < 64 && loop.outRing().pop(batch)) {
        taken++;
        if (loop.stalled.exchange(false)) loop.wake();
        std::vector<uint8_t> bytes(batch->bytes());
        batch->copyTo(bytes.data());
        uint32_t count = batch->count();
        if (!loop.returnRing().push(batch)) delete batch;
        handle(i, bytes, count);
      }
    }
  }

  void handle(size_t loop, const std::vector<uint8_t>& bytes, uint32_t count) {
    const uint8_t* base = bytes.data();
    const uint8_t* slab = base + size_t(count) * kRecordSize;
    for (uint32_t i = 0; i < count; i++) {
      const uint8_t* r = base + size_t(i) * kRecordSize;
      uint8_t kind = r[0];
      uint8_t flags = r[1];
      uint16_t type, code;
      uint32_t slot, generation, seq, offset, length;
      std::memcpy(&type, r + 2, 2);
      std::memcpy(&slot, r + 4, 4);
      std::memcpy(&generation, r + 8, 4);
      std::memcpy(&seq, r + 12, 4);
      std::memcpy(&offset, r + 16, 4);
      std::memcpy(&length, r + 20, 4);
      std::memcpy(&code, r + 28, 2);
      if (slab + offset + length > base + bytes.size()) return fail("record %u: slab out of bounds", i);
      auto& open = open_[loop];
      if (kind == kRecordError) continue;
      auto it = open.find(slot);
      if (kind == kRecordOpen) {
        if (it != open.end()) fail("loop %zu: OPEN for slot %u which is still open", loop, slot);
        open[slot] = Known{generation, false};
        opens_++;
        continue;
      }
      if (it == open.end() || it->second.generation != generation) {
        fail("loop %zu: record kind %u for unknown connection %u/%u", loop, kind, slot, generation);
        continue;
      }
      switch (kind) {
        case kRecordMessage:
          messages_++;
          if (seq == 0) pushes_++;
          if (type == kTypeRequest && seq != 0 && !(flags & kFlagResponse)) {
            std::vector<uint8_t> reply(kHeaderSize + length);
            encodeHeader(reply.data(), kFlagResponse, type, length, seq);
            std::memcpy(reply.data() + kHeaderSize, slab + offset, length);
            appendCommand(pending_[loop], 1, 0, 0, slot, generation, reply.data(), uint32_t(reply.size()));
          }
          break;
        case kRecordEnd:
          appendCommand(pending_[loop], 2, 0, 0, slot, generation, nullptr, 0);
          break;
        case kRecordClose:
          if (code == kEDESTROYED && !it->second.destroyed) {
            fail("loop %zu: connection %u/%u destroyed without being asked (ABA)", loop, slot, generation);
          }
          closes_++;
          open.erase(it);
          if (stale_[loop].size() < 64) stale_[loop].push_back({slot, generation});
          break;
        case kRecordData:
          fail("loop %zu: DATA record under frame framing", loop);
          break;
        default:
          break;  // DRAIN / BACKPRESSURE
      }
    }
  }

  void chaos() {
    uint32_t dice = rng_() % 1000;
    size_t loop = rng_() % pool_->size();
    if (dice < 20) {
      std::string text(dice < 10 ? 16 : 2048, 'b');  // small: copied; large: shared between loops
      auto bytes = frame(0, kTypeBroadcast, 0, text);
      pool_->broadcast(bytes.data(), bytes.size());  // false = some inbox full: skipped
    } else if (dice < 26 && !open_[loop].empty()) {
      auto it = open_[loop].begin();
      std::advance(it, long(rng_() % open_[loop].size()));
      it->second.destroyed = true;
      appendCommand(pending_[loop], 3, 0, 0, it->first, it->second.generation, nullptr, 0);
    } else if (dice < 30 && !open_[loop].empty()) {
      auto it = open_[loop].begin();
      const char reason[] = "harness close";
      appendCommand(pending_[loop], 4, 0, kEIO, it->first, it->second.generation,
                    reinterpret_cast<const uint8_t*>(reason), sizeof reason - 1);
    } else if (dice < 80 && !stale_[loop].empty()) {
      // Dead ids: the slot may hold a new connection now; these must be ignored.
      auto dead = stale_[loop][rng_() % stale_[loop].size()];
      auto bytes = frame(0, kTypeStale, 0, "stale " + std::to_string(dead.first) + "/" + std::to_string(dead.second));
      appendCommand(pending_[loop], 1, 0, 0, dead.first, dead.second, bytes.data(), uint32_t(bytes.size()));
      appendCommand(pending_[loop], 3, 0, 0, dead.first, dead.second, nullptr, 0);
      if (stale_[loop].size() >= 64) stale_[loop].erase(stale_[loop].begin());
    } else if (dice < 83) {
      // JS busy: batches pile up, the ring fills and the loops must wait for us.
      std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng_() % 30));
    } else if (dice < 90) {
      uint64_t sum = 0;
      for (size_t i = 0; i < pool_->size(); i++) {
        const LoopStats& s = pool_->loop(i).stats();
        sum += s.connections.load() + s.bytesIn.load() + s.bytesOut.load() + s.batches.load();
      }
      statsSeen_ += sum;
    }
  }

  void flushCommands() {
    for (size_t i = 0; i < pending_.size(); i++) {
      if (pending_[i].empty()) continue;
      if (pool_->submit(i, pending_[i].data(), pending_[i].size())) pending_[i].clear();
    }
  }

  RoundConfig round_;
  Shared& shared_;
  std::mt19937 rng_;
  TestDoorbell bell_;
  std::unique_ptr<Pool> pool_;
  std::vector<std::unordered_map<uint32_t, Known>> open_;
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> stale_;
  std::vector<std::vector<uint8_t>> pending_;
  uint64_t opens_ = 0, closes_ = 0, messages_ = 0, pushes_ = 0, statsSeen_ = 0;
};

void runRound(const RoundConfig& round) {
  Shared shared;
  std::vector<std::thread> clients;
  for (int i = 0; i < round.clients; i++) clients.emplace_back(clientThread, i, std::ref(shared));
  for (int i = 0; i < round.pushers; i++) clients.emplace_back(pusherThread, i, std::ref(shared));
  JsThread js(round, shared);
  std::thread jsThread([&js] { js.run(); });
  jsThread.join();
  shared.clientsStop = true;
  for (auto& t : clients) t.join();
  if (round.millis >= 1000 && shared.replies.load() == 0) fail("%s: no request was answered", round.name);
  if (round.millis >= 1000) {
    std::printf("tsan harness: %-28s clients: connections %llu replies %llu broadcasts %llu pings %llu\n", round.name,
                (unsigned long long)shared.connections.load(), (unsigned long long)shared.replies.load(),
                (unsigned long long)shared.broadcasts.load(), (unsigned long long)shared.pings.load());
  }
}

}  // namespace
}  // namespace test
}  // namespace edgepoll

int main() {
  using edgepoll::test::RoundConfig;
  // T31: a peer that resets while we write must not kill us; SIGPIPE stays
  // at its default (fatal) action, so only MSG_NOSIGNAL keeps us alive.
  signal(SIGPIPE, SIG_DFL);
  alarm(420);  // a hang is a failure, not a stuck CI job
  double scale = 1.0;
  if (const char* text = std::getenv("HARNESS_SCALE")) scale = std::atof(text);
  auto ms = [scale](int base) { return int(base * scale); };
  const RoundConfig rounds[] = {
      {"2 loops reuseport edge", 2, false, false, false, 8, 2, ms(2500)},
      {"3 loops exclusive edge", 3, true, false, true, 8, 2, ms(2500)},
      {"4 loops reuseport level", 4, false, true, false, 8, 2, ms(2000)},
      {"4 loops exclusive edge", 4, true, false, false, 12, 3, ms(2500)},
  };
  for (const auto& round : rounds) edgepoll::test::runRound(round);
  // Stop/join while traffic flows, many times (T36 without Node).
  int quick = int(20 * scale);
  for (int i = 0; i < quick; i++) {
    RoundConfig round{"quick stop", uint32_t(2 + i % 3), i % 2 == 1, false, false, 4, 1, 60 + (i % 5) * 20};
    edgepoll::test::runRound(round);
  }
  std::printf("tsan harness: %d quick start/stop rounds done\n", quick);
  int failures = edgepoll::test::failures().load();
  if (failures != 0) {
    std::fprintf(stderr, "tsan harness: %d check(s) failed\n", failures);
    return 1;
  }
  std::printf("tsan harness: ok\n");
  return 0;
}
