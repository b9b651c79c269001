// The one ThreadSafeFunction of an engine, rung as a doorbell, and the drain
// of every loop's batch ring on the JS thread.
// Owns: the napi_threadsafe_function and a WEAK reference to onBatch (the
// Engine object holds the function strongly in a property; a strong native
// reference would root the closure, which usually holds the engine, so an
// unreferenced engine could never be collected).
// Its own lifetime ends in the TSFN finalizer, because a queued call may run
// after the engine stopped (it then does nothing). Does not own: the pool or
// its rings (borrowed until close()).
// Runs on: ring() from any loop thread; everything else on the JS thread.
#pragma once
#include <node_api.h>

#include <atomic>

#include "batch.h"

namespace edgepoll {

class Pool;

class Bridge final : public Doorbell {
 public:
  // JS thread. nullptr when the TSFN cannot be created (an exception is pending).
  static Bridge* create(napi_env env, napi_value onBatch);
  void attach(Pool* pool) { pool_ = pool; }
  // The loop runs on the JS thread (native/js-thread.h): ring() only notes
  // that batches wait, and the loop's driver calls deliver() after each turn.
  void runOnJsThread() { onJsThread_ = true; }
  // JS thread, outside any JS call: hands the waiting batches to onBatch in
  // a callback scope (microtasks and nextTicks run when it closes; a throw
  // goes to 'uncaughtException'). Returns the number delivered.
  int deliver(napi_env env);
  // Any thread: at most one call is ever queued (the pending flag), so a
  // finite queue never fills and many batches cost one wake-up of JS.
  void ring() override;
  // JS thread: the TSFN's hold on the event loop.
  void ref(napi_env env);
  void unref(napi_env env);
  // JS thread, after the loops were joined: forget the pool, release the
  // TSFN; the finalizer deletes this object.
  void close();

 private:
  Bridge() = default;
  static void callJs(napi_env env, napi_value onBatch, void* context, void* data);
  static void finalize(napi_env env, void* data, void* hint);
  int drain(napi_env env, napi_value onBatch);

  napi_threadsafe_function tsfn_ = nullptr;
  napi_ref onBatch_ = nullptr;  // weak
  std::atomic<bool> pending_{false};
  Pool* pool_ = nullptr;
  bool closed_ = false;
  bool onJsThread_ = false;
  napi_async_context async_ = nullptr;  // deliver()'s callback scope
};

}  // namespace edgepoll
