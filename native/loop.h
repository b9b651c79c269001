// One epoll loop on its own thread: wait → dispatch (accept, read, write) →
// again list → inbox commands → sweep → hand the batch to JS → free closed slots.
// Owns: the epoll fd, its eventfd, its listener fd (a dup in exclusive mode),
// its topic table (fanout.cc, topics.h),
// its connections, one 64 KiB receive buffer, the batch being filled, the
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

struct LoopConfig {
  Framing framing = Framing::Frame;
  uint32_t maxFrame = 1024 * 1024;
  uint64_t highWaterMark = 1024 * 1024;
  uint64_t maxBufferedAmount = 8 * 1024 * 1024;
  uint32_t heartbeatInterval = 0;
  uint32_t heartbeatTimeout = 0;
  uint32_t idleTimeout = 0;
  uint32_t frameTimeout = 0;
  uint32_t maxConnections = 0;  // 0 = unlimited
  bool allowHalfOpen = false;
  bool nativeEcho = false;
  bool levelTriggered = false;
  // PROXY protocol: every connection must start with a v1/v2 header, from a
  // trusted source, complete within proxyTimeout ms.
  bool proxyProtocol = false;
  uint32_t proxyTimeout = 3000;
  std::vector<ProxyNetwork> proxyTrusted;
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
};

class Loop {
 public:
  Loop(uint32_t index, const LoopConfig& config, LoopShared& shared);
  ~Loop();  // JS thread, after join(): frees whatever the rings still hold
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // JS thread, before start(). Returns 0 or an errno.
  int init();
  void setListener(int fd);  // takes ownership
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
  void reportError(uint16_t code);

  // conn.cc: the per-connection paths.
  Conn* lookup(uint32_t slot, uint32_t generation);
  void readConn(Conn& conn, bool untilEnd);
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
  void announce(Conn& conn, const std::string& address, uint32_t port);
  void abortProxy(Conn& conn, uint16_t code);
  // sweep.cc
  void sweep();
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
  bool listenerAgain_ = false;
  // Out of fds: accepting is retried at this time (ms), since connections left
  // in the backlog raise no new edge once fds free up. 0 = no retry pending.
  int64_t acceptRetryAt_ = 0;
  std::atomic<bool> accepting_{false};
  std::atomic<bool> acceptStop_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int64_t now_ = 0;
  int64_t lastErrorReport_ = -1000000;
  uint32_t pingSeq_ = 0;

  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<uint32_t> freeSlots_;
  std::vector<uint32_t> closed_;  // freed after the iteration that closed them
  std::vector<uint32_t> again_;   // read budget spent or reads held back: served next iteration
  std::vector<uint32_t> dirty_;   // connections written to in this iteration: flushed once, at its end
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
