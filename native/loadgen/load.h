// Plain data of one load-generator run: the options, the counters every worker
// publishes, the phase the controller drives, and the final report.
// Owns: nothing with a lifetime. No Node-API here (binding.cc converts), no
// sockets (worker.cc). Threads: options are written before the workers start
// and read-only after; counters have exactly one writer (their worker) and are
// read by the controller with relaxed loads (a progress line may be a few
// messages stale, never torn); the phase is written by the controller only.
#pragma once
#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace edgepoll {

enum class LoadMode : uint8_t { RequestReply = 0, Churn = 1, Idle = 2, Broadcast = 3 };

struct LoadOptions {
  sockaddr_in target{};          // resolved loopback IPv4 address
  LoadMode mode = LoadMode::RequestReply;
  bool rawFraming = false;       // raw: bytes echoed back, no frames
  uint32_t connections = 100;    // rr/idle/broadcast: open connections; churn: concurrent workers
  uint32_t depth = 1;            // requests in flight per connection (1 = ping-pong)
  uint32_t payload = 64;         // payload bytes per request
  double durationSeconds = 5;    // measured window
  double warmupSeconds = 0;      // load runs but is not counted
  double rampTimeoutSeconds = 30;// give up waiting for every connection to open
  uint32_t intervalMs = 5000;    // idle: PING period per connection
  uint32_t threads = 1;          // worker threads
  uint32_t sourceAddresses = 0;  // spread over 127.0.0.2..: 0 = none
  uint32_t progressMs = 1000;    // progress period (0 = none)
  uint32_t senders = 1;          // broadcast: connections that send BROADCAST
  uint32_t rate = 0;             // broadcast: BROADCASTs per second over all senders, 0 = paced by delivery
  uint16_t requestType = 1;      // ECHO (broadcast mode uses BROADCAST = 2)
};

enum class LoadPhase : int { Ramp = 0, Warmup = 1, Record = 2, Stop = 3 };

// One counter with one writer: a relaxed load + store instead of a locked add,
// because the writer is always the same thread.
struct LoadCounter {
  std::atomic<uint64_t> value{0};
  void add(uint64_t n = 1) { value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(uint64_t n = 1) { value.store(value.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

struct LoadCounters {
  LoadCounter messages;       // validated replies (rr), cycles (churn), pongs (idle), deliveries (broadcast); Record phase only
  LoadCounter sent;           // requests written during the Record phase
  LoadCounter bytesReceived;  // Record phase only
  LoadCounter errors;         // lost connections, failed connects, ERROR replies, CLOSE from the server
  LoadCounter mismatches;     // wrong seq, type, length, flags or payload bytes
  LoadCounter connects;       // successful connects (all phases)
  LoadCounter connectErrors;  // failed connects (all phases)
  LoadCounter open;           // connections open now (gauge)
  LoadCounter serverCloses;   // CLOSE or GOAWAY frames received
  LoadCounter pings;          // idle: PINGs sent (Record phase)
  LoadCounter missedPongs;    // idle: a PING still unanswered when the next was due
  LoadCounter broadcasts;     // broadcast: BROADCAST replies received (Record phase)
  LoadCounter pushesTotal;    // broadcast: pushes received in any phase (paces the senders)
};

// Written by the controller, read by every worker.
struct LoadShared {
  std::atomic<int> phase{int(LoadPhase::Ramp)};
  std::atomic<uint64_t> broadcastsSent{0};  // every sender adds (fetch_add: several writers)
  std::vector<LoadCounters*> all;           // every worker's counters, for the broadcast pacing
  LoadPhase current() const { return LoadPhase(phase.load(std::memory_order_acquire)); }
};

struct LoadLatency {
  uint64_t count = 0;
  double minUs = 0, meanUs = 0, p50Us = 0, p90Us = 0, p99Us = 0, p999Us = 0, maxUs = 0;
};

struct LoadProgress {
  double elapsedSeconds = 0;
  const char* phase = "ramp";
  uint64_t open = 0;
  uint64_t messages = 0;
  uint64_t errors = 0;
  uint64_t mismatches = 0;
  double ratePerSecond = 0;  // messages per second over the last period
};

struct LoadReport {
  std::string error;  // non-empty: the run could not start (bad target, no fds)
  double durationSeconds = 0;  // measured window, actual
  double rampSeconds = 0;      // time to open every connection
  double totalSeconds = 0;     // whole run: ramp + warm-up + window
  uint64_t opened = 0;         // connections open when the window started
  LoadCounters totals;
  LoadLatency latency;
  double messagesPerSecond = 0;
  double loadgenCpuSeconds = 0;  // user + system time of the worker threads
  uint64_t fdLimit = 0;
  std::string firstError;        // text of the first error seen, for diagnosis
};

}  // namespace edgepoll
