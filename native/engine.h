// The object JS holds: new Engine(options, onBatch), listen (a host and port,
// a Unix path, or a listening fd to adopt), submit,
// broadcast, publish, stopAccepting, trim, stats, stop, ref, unref (docs/internals.md).
// Owns: the pool (loops, threads, fds) and the bridge (until it is released;
// the TSFN finalizer frees it). Keeps itself strongly referenced while
// listening; stops on stop(), on garbage collection and on environment
// teardown (process.exit, worker.terminate) through a cleanup hook.
// Does not own: any state shared between environments (no globals: the addon
// loads in several worker_threads at once).
// Also createListener(host, port, backlog, reusePort): a listening socket no
// loop serves, for a workers primary to share (the caller owns the fd).
// Runs on: the JS thread of the environment that created it.
#pragma once
#include <napi.h>

#include <memory>

#include "bridge.h"
#include "driver.h"
#include "pool.h"

namespace edgepoll {

class Engine : public Napi::ObjectWrap<Engine> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit Engine(const Napi::CallbackInfo& info);
  ~Engine() override;

 private:
  Napi::Value listen(const Napi::CallbackInfo& info);
  Napi::Value submit(const Napi::CallbackInfo& info);
  Napi::Value broadcast(const Napi::CallbackInfo& info);
  Napi::Value publish(const Napi::CallbackInfo& info);
  Napi::Value stopAccepting(const Napi::CallbackInfo& info);
  Napi::Value trim(const Napi::CallbackInfo& info);
  Napi::Value stats(const Napi::CallbackInfo& info);
  Napi::Value stop(const Napi::CallbackInfo& info);
  Napi::Value ref(const Napi::CallbackInfo& info);
  Napi::Value unref(const Napi::CallbackInfo& info);

  // Idempotent. `teardown`: the environment is going away (no JS references touched).
  void shutdown(bool teardown);
  // After a successful listen: the self-reference, the hold on the event
  // loop, and with threads: 0 the driver. false (an exception thrown) when
  // the driver cannot start.
  bool listening(Napi::Env env);
  static void cleanupHook(void* arg);

  napi_env env_;
  std::unique_ptr<Pool> pool_;
  Bridge* bridge_ = nullptr;
  std::unique_ptr<Driver> driver_;  // threads: 0 only
  bool hooked_ = false;
  bool selfReferenced_ = false;
  bool wantRef_ = true;  // ref()/unref() from JS; effective while listening
  bool listening_ = false;
  bool stopped_ = false;
};

}  // namespace edgepoll
