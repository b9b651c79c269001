// One epoll loop on its own thread: wait → dispatch (accept, read, write) →
// again list → inbox commands → sweep → hand the batch to JS → free closed slots.
// Owns: the epoll fd, its eventfd, its listener fd (a dup in exclusive mode),
// its topic table (fanout.cc, topics.h),
// its connections, one receive buffer (LoopBounds), the batch being filled, the
// outgoing batch ring and the inbox ring.
// Does not own: the bridge (reached through Doorbell), the connection counter
// shared by every loop (LoopShared).
// Runs on: its own thread, except the methods marked "JS thread" (submit,
// broadcast, wake, stopAccepting, start/join) which only touch atomics, rings
// and the eventfd.
#pragma once
#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "batch.h"
#include "conn.h"
#include "ring.h"
#include "sweep.h"
#include "topics.h"

namespace edgepoll {

// The sizes that bound a loop's work and memory. The defaults are the
// production values; tiny() shrinks every one of them so that the pauses they
// cause (credit, budget, full ring, full inbox) happen all the time: a debug
// switch for the test suites (EDGEPOLL_DEBUG_TINY_BOUNDS=1 in
// src/engines/native.ts), never documented for users.
struct LoopBounds {
  size_t readBuffer = 64 * 1024;       // one per loop
  size_t readBudget = 256 * 1024;      // per connection per wake-up: fairness
  uint64_t readWindow = 0;             // read credit per connection; 0 = from maxBufferedAmount
  size_t batchSoftCap = 256 * 1024;    // one large message may exceed it
  size_t outRingBatches = 64;          // ≤ 64 × (cap + one read + maxFrame) per loop
  size_t inboxBlocks = 1024;
  size_t inboxBytes = 64 * 1024 * 1024;
  size_t broadcastFanout = 8 * 1024 * 1024;  // outbox bytes broadcasts may add per iteration
  size_t spareBatches = 4;             // batches kept for reuse after a stall

  static LoopBounds tiny() {
    LoopBounds b;
    b.readBuffer = 1024;
    b.readBudget = 4 * 1024;
    b.readWindow = 4 * 1024;
    b.batchSoftCap = 4 * 1024;
    b.outRingBatches = 2;
    b.inboxBlocks = 2;
    b.inboxBytes = 16 * 1024;
    b.broadcastFanout = 16 * 1024;
    b.spareBatches = 1;
    return b;
  }
};

struct LoopConfig {
  LoopBounds bounds;
  Framing framing = Framing::Frame;
  uint32_t maxFrame = 1024 * 1024;
  uint64_t highWaterMark = 1024 * 1024;
  uint64_t maxBufferedAmount = 8 * 1024 * 1024;
  uint32_t heartbeatInterval = 0;
  uint32_t heartbeatTimeout = 0;
  uint32_t idleTimeout = 0;
  uint32_t frameTimeout = 0;
  uint32_t maxConnections = 0;  // 0 = unlimited
  // Width of a slot's generation (docs/internals.md: 23). Only tests lower
  // it (a hidden option), to reach a generation wrap in a few connections.
  uint32_t generationBits = 23;
  bool nativeEcho = false;
  bool levelTriggered = false;
  // PROXY protocol: every connection must start with a v1/v2 header, from a
  // trusted source, complete within proxyTimeout ms.
  bool proxyProtocol = false;
  uint32_t proxyTimeout = 3000;
  std::vector<ProxyNetwork> proxyTrusted;
  bool proxyTrustUnix = false;  // the trusted entry "unix": a Unix socket peer may send a header
  // Bytes all decoders of one loop may hold for partial messages (ENOMEM past it).
  uint64_t maxPartialBytes = 256ull * 1024 * 1024;
};

// State every loop of one engine shares.
struct LoopShared {
  std::atomic<uint32_t> connections{0};
  Doorbell* doorbell = nullptr;
  bool exclusive = false;  // one listener in every loop's epoll (EPOLLEXCLUSIVE)
};

// A block of commands (docs/internals.md) or one broadcast, JS → loop.
struct InboxBlock {
  std::vector<uint8_t> commands;
  SharedBytes broadcast;
  // A publish (fanout.cc): `broadcast` holds the frame, sent only to the
  // topic's members, except the connection exceptSlot/exceptGeneration.
  bool publish = false;
  std::string topic;
  uint32_t exceptSlot = UINT32_MAX;
  uint32_t exceptGeneration = 0;
};

// Topic commands in a command block (after kOpWrite … kOpClose of conn.cc);
// the payload is the topic name.
constexpr uint8_t kOpSubscribe = 5;
constexpr uint8_t kOpUnsubscribe = 6;

struct LoopStats {
  std::atomic<uint64_t> connections{0}, accepted{0}, rejected{0}, protocolErrors{0};
  std::atomic<uint64_t> bytesIn{0}, bytesOut{0}, batches{0}, ringFull{0}, acceptErrors{0};
  std::atomic<uint64_t> proxyErrors{0};  // PROXY header malformed, late or untrusted (also in protocolErrors)
  std::atomic<uint64_t> slots{0};  // Conn objects held now (live + closing): back down after a burst
  // Sweep slices that stopped at their budget, the pass continuing after the next I/O (sweep.cc).
  std::atomic<uint64_t> sweepDeferred{0};
};

class Loop {
 public:
  Loop(uint32_t index, const LoopConfig& config, LoopShared& shared);
  ~Loop();  // JS thread, after join(): frees whatever the rings still hold
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // JS thread, before start(). Returns 0 or an errno.
  int init();
  // Registers the listener with this loop's epoll: 0 (the loop owns fd now)
  // or an errno (the caller still owns fd).
  int setListener(int fd);
  void dropListener();  // undoes setListener before start()
  void start();
  void requestStop();
  void join();

  // JS thread. false = inbox full, nothing taken.
  bool submit(const uint8_t* bytes, size_t length);
  bool hasRoom() const;
  void pushBroadcast(const SharedBytes& bytes);  // call only after hasRoom()
  // fanout.cc; call only after hasRoom(). exceptSlot UINT32_MAX = nobody excepted.
  void pushPublish(const SharedBytes& frame, const std::string& topic, uint32_t exceptSlot, uint32_t exceptGeneration);
  void stopAccepting();
  bool accepting() const { return accepting_.load(); }
  void wake();

  // Batches to JS (consumer: bridge on the JS thread) and their way back for reuse.
  SpscRing<Batch*>& outRing() { return out_; }
  SpscRing<Batch*>& returnRing() { return returns_; }
  // Set by the loop when the out ring was full; the bridge clears it and wakes the loop.
  std::atomic<bool> stalled{false};
  // Set while a connection waits for read credit: the bridge wakes the loop
  // when it hands a consumed batch back, so reclaim() can resume it.
  std::atomic<bool> creditWanted{false};
  // True while the loop is about to block in epoll_wait: only then do
  // submitters pay for an eventfd write (see run() and wakeIfSleeping()).
  std::atomic<bool> sleeping_{false};
  const LoopStats& stats() const { return stats_; }
  uint32_t index() const { return index_; }

 private:
  friend class ConnSink;
  void run();
  void dispatch(const epoll_event& event);
  void onListener();
  void adopt(int fd, const sockaddr_storage& address);
  void applyInbox();
  void applyCommands(const uint8_t* bytes, size_t length);
  void serveAgain();
  void freeClosed();
  void retryWrites();
  int trimWhenIdle(int timeout);
  void reportError(uint16_t code);

  // conn.cc: the per-connection paths.
  Conn* lookup(uint32_t slot, uint32_t generation);
  static uint64_t tokenFor(const Conn& conn) { return (uint64_t(conn.generation) << 32) | conn.slot; }
  bool closeIfSlow(Conn& conn);
  // The slot table (loop.cc): a free slot for a new connection, or null.
  Conn* takeSlot();
  void releaseSlot(uint32_t slot);
  void readConn(Conn& conn);
  void deliver(Conn& conn, const uint8_t* data, size_t length);
  bool onMessage(Conn& conn, const Message& message);
  void onPeerEnd(Conn& conn);
  void onWritable(Conn& conn);
  void send(Conn& conn, const uint8_t* data, size_t length);
  void wakeIfSleeping();
  void markDirty(Conn& conn);
  void flushDirty();
  void reclaim();
  void pauseForCredit(Conn& conn);
  void sendShared(Conn& conn, const SharedBytes& bytes);
  void sendFrame(Conn& conn, uint8_t flags, uint16_t type, uint32_t seq, const uint8_t* payload, size_t length);
  void updateWater(Conn& conn);
  void endConn(Conn& conn);
  void closeAfterFlush(Conn& conn, uint16_t code, std::string reason, bool sendCloseFrame);
  void closeNow(Conn& conn, uint16_t code, std::string reason);
  void finalize(Conn& conn);
  void queueAgain(Conn& conn);
  void setInterest(Conn& conn);
  // PROXY protocol (conn.cc): header first, then OPEN.
  bool trustedPeer(const sockaddr_storage& address) const;
  void deliverProxy(Conn& conn, const uint8_t* data, size_t length);
  // OPEN; `tls`: the PROXY header's TLS details, after the address in the slab (flags bit 0).
  void announce(Conn& conn, const std::string& address, uint32_t port, const ProxyTls* tls = nullptr);
  void abortProxy(Conn& conn, uint16_t code);
  // sweep.cc
  void sweep();
  bool visit(Conn& conn);
  void resumeClock(Conn& conn);
  // fanout.cc
  void applyPublish(const InboxBlock& block);
  void applyTopicCommand(Conn& conn, uint8_t op, const uint8_t* payload, size_t size);

  // batch hand-off
  void record(const Record& record, const uint8_t* payload, size_t length);
  void flushBatch();
  static Record recordFor(const Conn& conn, uint8_t kind);

  uint32_t index_;
  LoopConfig config_;
  LoopShared& shared_;
  LoopStats stats_;
  int epollFd_ = -1;
  int wakeFd_ = -1;
  int listenFd_ = -1;
  int reserveFd_ = -1;
  // Accepting stopped with connections left in the backlog: the accept budget
  // ran out, or the batch ring is full (accepting waits for JS, so a
  // connect flood during a JS stall stays in the kernel's backlog).
  bool listenerAgain_ = false;
  // Out of fds or kernel memory: accepting is retried at this time (ms), since
  // connections left in the backlog raise no new edge later. 0 = no retry pending.
  int64_t acceptRetryAt_ = 0;
  std::atomic<bool> accepting_{false};
  std::atomic<bool> acceptStop_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int64_t now_ = 0;
  int64_t lastErrorReport_ = -1000000;
  uint32_t pingSeq_ = 0;

  InputBudget inputBudget_;  // partial-message bytes of every decoder here (before conns_: outlives them)
  // The slot table. A slot keeps its generation for ever (4 bytes), its Conn
  // only while a connection uses it: memory returns after a burst. Free slots
  // are reused oldest-first, and only while more than a quarantine's worth
  // are free, so one slot's generation wraps only after 2^23 × 1024
  // connections and a stale id never names a new connection before that.
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<uint32_t> generations_;
  std::deque<uint32_t> freeSlots_;
  std::vector<uint32_t> live_;    // slots of Open/Closing connections: what sweeps and broadcasts walk
  std::vector<uint32_t> closed_;  // freed after the iteration that closed them
  std::vector<uint32_t> again_;   // read budget spent or reads held back: served next iteration
  std::vector<uint32_t> dirty_;   // connections written to in this iteration: flushed once, at its end
  uint64_t trimmedAtBytes_ = 0;  // bytesIn + bytesOut at the last heap trim
  int64_t lastTrim_ = 0;
  std::vector<uint32_t> writeRetry_;  // flushes stopped by ENOBUFS/ENOMEM: offered again next iteration
  std::vector<Batch*> spare_;     // batches JS handed back, credit reclaimed, ready for reuse
  size_t creditPaused_ = 0;       // connections waiting for read credit
  uint64_t readWindow_ = 0;       // payload bytes one connection may have with JS before its reads pause
  std::vector<uint8_t> readBuffer_;
  SweepClock sweepClock_;
  TopicTable topics_;  // fanout.cc; a slot's memberships go when freeClosed frees it

  Batch* batch_ = nullptr;
  bool outputBlocked_ = false;  // out ring full: reads wait for the bridge
  SpscRing<Batch*> out_;
  SpscRing<Batch*> returns_;
  SpscRing<InboxBlock*> inbox_;
  std::atomic<size_t> inboxBytes_{0};
};

}  // namespace edgepoll
