// One load-generator thread: its own edge-triggered epoll, its own share of
// the connections, its own histogram and counters.
// Owns: the sockets it opens and their buffers. Does not own: the options and
// the phase (LoadShared, written by the controller in run.cc).
// Threads: the constructor, start() and join() run on the controller thread;
// everything else runs on the worker thread. After join() the controller may
// read histogram(), firstError() and cpuSeconds(); counters() at any time.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "histogram.h"
#include "load.h"

namespace edgepoll {

// A request the worker is waiting on: seq (frame) or stream end offset (raw).
struct LoadInFlight {
  uint64_t key = 0;
  uint64_t sentNs = 0;
};

enum class LoadConnState : uint8_t { Closed = 0, Connecting = 1, Open = 2 };

struct LoadConn {
  int fd = -1;
  LoadConnState state = LoadConnState::Closed;
  bool queued = false;         // in the connect queue
  uint32_t index = 0;          // global connection number (picks the source address)
  uint32_t generation = 0;     // bumped on every close; stale epoll events are skipped
  uint32_t nextSeq = 1;
  uint64_t retryAtNs = 0;
  uint64_t startNs = 0;        // churn: when this cycle's connect started
  uint64_t rawSent = 0;        // raw: stream offset written
  uint64_t rawReceived = 0;    // raw: stream offset received and checked
  uint32_t pingSeq = 0;        // idle: outstanding PING (0 = none)
  uint64_t pingSentNs = 0;
  std::vector<LoadInFlight> inFlight;  // ring of capacity depth
  uint32_t inFlightHead = 0, inFlightCount = 0;
  std::vector<uint8_t> in;     // an incomplete frame carried to the next read
  std::vector<uint8_t> out;    // bytes the kernel has not taken yet
  size_t outOffset = 0;
};

class LoadWorker {
 public:
  LoadWorker(const LoadOptions& options, LoadShared& shared, uint32_t firstConn, uint32_t connCount);
  ~LoadWorker();
  LoadWorker(const LoadWorker&) = delete;
  LoadWorker& operator=(const LoadWorker&) = delete;

  void start();
  void join();
  LoadCounters& counters() { return counters_; }
  const Histogram& histogram() const { return histogram_; }
  const std::string& firstError() const { return firstError_; }
  double cpuSeconds() const { return cpuSeconds_; }

 private:
  void run();
  void maintain(uint64_t now);
  void connect(LoadConn& c, uint64_t now);
  void onEvent(LoadConn& c, uint32_t events, uint64_t now);
  void onOpen(LoadConn& c, uint64_t now);
  void onReadable(LoadConn& c, uint64_t now);
  size_t parseFrames(LoadConn& c, const uint8_t* data, size_t size, uint64_t now);
  size_t parseRaw(LoadConn& c, const uint8_t* data, size_t size, uint64_t now);
  bool onFrame(LoadConn& c, const uint8_t* frame, uint64_t now);
  bool checkReply(LoadConn& c, uint8_t flags, uint16_t type, uint32_t seq, const uint8_t* payload, uint32_t length, uint64_t now);
  void refill(LoadConn& c, uint64_t now);
  void appendRequest(LoadConn& c, uint64_t now);
  void sendPing(LoadConn& c, uint64_t now);
  void flush(LoadConn& c);
  void fail(LoadConn& c, const char* what, int error, uint64_t now);
  void close(LoadConn& c);
  void queueConnect(LoadConn& c, uint64_t at);
  bool popInFlight(LoadConn& c, uint64_t key, uint64_t* sentNs);
  bool broadcastAllowed() const;
  void noteError(const char* what, int error);
  bool recording() const { return phase_ == LoadPhase::Record; }

  const LoadOptions& options_;
  LoadShared& shared_;
  uint32_t firstConn_;
  std::vector<LoadConn> conns_;  // sized once: epoll data points into it by index
  std::deque<uint32_t> connectQueue_;
  uint32_t connecting_ = 0;
  std::vector<uint8_t> request_;  // pre-encoded request: header + pattern payload
  std::vector<uint8_t> scratch_;  // one read buffer for the whole thread
  LoadPhase phase_ = LoadPhase::Ramp;
  uint64_t pingCycleStartNs_ = 0;
  uint32_t pingCursor_ = 0;
  uint64_t nextBroadcastNs_ = 0;
  uint64_t lastBroadcastNs_ = 0;
  int epollFd_ = -1;
  std::thread thread_;
  LoadCounters counters_;
  Histogram histogram_;
  std::string firstError_;
  double cpuSeconds_ = 0;
};

// Deterministic payload bytes: a reply that carries the right length but
// someone else's bytes (or shifted bytes) is caught.
inline uint8_t loadPattern(uint64_t i) { return uint8_t(i * 131 + 17); }

uint64_t loadNowNs();

}  // namespace edgepoll
