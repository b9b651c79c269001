// The loop on the JS thread (threads: 0): libuv watches the loop's epoll fd
// and a timer, and each wake-up runs turns of the loop with the batches
// delivered to JS in between, so a reply leaves in the turn after the one
// that read its request, with no thread hand-off and no wake-up between
// threads. What it gives up: nothing reads, answers PINGs or sweeps while JS
// is busy (docs/internals.md "The loop on the JS thread").
// Owns: the uv_poll_t and uv_timer_t (heap; freed in their close callbacks,
// which may run after this object is gone). Does not own: the loop or the
// bridge (the Engine's, which outlive every turn started here).
// Runs on: the JS thread.
#pragma once
#include <node_api.h>
#include <uv.h>

namespace edgepoll {

class Bridge;
class Loop;

class Driver {
 public:
  Driver(napi_env env, Loop& loop, Bridge& bridge) : env_(env), loop_(loop), bridge_(bridge) {}
  ~Driver() { stop(); }
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // After the loop has its listener. 0 or a libuv error (negative errno).
  int start();
  // Before the loop is joined: no turn runs after this.
  void stop();
  void ref();
  void unref();

 private:
  static void onReadable(uv_poll_t* handle, int status, int events);
  static void onTimer(uv_timer_t* handle);
  void pump();

  napi_env env_;
  Loop& loop_;
  Bridge& bridge_;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  bool referenced_ = true;
  bool pumping_ = false;
  bool stopped_ = false;
};

}  // namespace edgepoll
