// The doorbell TSFN and the batch drain (see bridge.h).
#include "bridge.h"

#include <atomic>
#include <cstring>

#include "pool.h"

namespace edgepoll {

namespace {
// Batches delivered per JS call before yielding to the event loop (timers,
// sockets of the JS thread) and ringing again.
constexpr int kBatchesPerCall = 64;
}  // namespace

Bridge* Bridge::create(napi_env env, napi_value onBatch) {
  auto* bridge = new Bridge();
  napi_value name;
  napi_create_string_utf8(env, "edgepoll", NAPI_AUTO_LENGTH, &name);
  napi_status status = napi_create_threadsafe_function(env, nullptr, nullptr, name, 4, 1, bridge, &Bridge::finalize,
                                                       bridge, &Bridge::callJs, &bridge->tsfn_);
  if (status == napi_ok) status = napi_create_reference(env, onBatch, 0, &bridge->onBatch_);
  if (status != napi_ok) {
    if (bridge->tsfn_) {
      napi_release_threadsafe_function(bridge->tsfn_, napi_tsfn_abort);  // its finalizer deletes bridge
    } else {
      delete bridge;
    }
    napi_throw_error(env, "EIO", "cannot create the engine's thread-safe function");
    return nullptr;
  }
  // Nothing is listening yet: do not hold the process open.
  napi_unref_threadsafe_function(env, bridge->tsfn_);
  return bridge;
}

void Bridge::ring() {
  if (pending_.exchange(true)) return;
  if (napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking) != napi_ok) pending_ = false;
}

void Bridge::ref(napi_env env) {
  if (!closed_) napi_ref_threadsafe_function(env, tsfn_);
}

void Bridge::unref(napi_env env) {
  if (!closed_) napi_unref_threadsafe_function(env, tsfn_);
}

void Bridge::close() {
  if (closed_) return;
  closed_ = true;
  pool_ = nullptr;
  napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
}

void Bridge::finalize(napi_env env, void* data, void*) {
  auto* bridge = static_cast<Bridge*>(data);
  if (env && bridge->onBatch_) napi_delete_reference(env, bridge->onBatch_);
  delete bridge;
}

void Bridge::callJs(napi_env env, napi_value, void* context, void*) {
  auto* bridge = static_cast<Bridge*>(context);
  if (env == nullptr || bridge->closed_) return;  // environment going away / engine stopped
  napi_value onBatch = nullptr;
  if (napi_get_reference_value(env, bridge->onBatch_, &onBatch) != napi_ok || onBatch == nullptr) return;
  bridge->drain(env, onBatch);
}

void Bridge::drain(napi_env env, napi_value onBatch) {
  // Cleared first: a batch pushed while we drain rings again.
  pending_ = false;
  if (closed_ || !pool_) return;
  napi_value global;
  napi_get_global(env, &global);
  int delivered = 0;
  bool any = true;
  while (any) {
    any = false;
    for (size_t i = 0; i < pool_->size(); i++) {
      Loop& loop = pool_->loop(i);
      Batch* batch;
      if (!loop.outRing().pop(batch)) continue;
      any = true;
      if (loop.stalled.exchange(false)) loop.wake();  // its reads resume
      napi_handle_scope scope;
      napi_open_handle_scope(env, &scope);
      void* bytes = nullptr;
      napi_value args[3];
      if (napi_create_arraybuffer(env, batch->bytes(), &bytes, &args[1]) != napi_ok || bytes == nullptr) {
        // Only when the environment is terminating (worker.terminate()) or
        // out of memory: no JS will see this batch.
        delete batch;
        napi_close_handle_scope(env, scope);
        return;
      }
      batch->copyTo(static_cast<uint8_t*>(bytes));
      napi_create_uint32(env, uint32_t(i), &args[0]);
      napi_create_uint32(env, batch->count(), &args[2]);
      if (!loop.returnRing().push(batch)) delete batch;
      // A connection may wait for this credit. The fence orders the push (a
      // release store) before the flag's load, as in Loop::wakeIfSleeping:
      // either we see creditWanted, or the loop, past its own fence before
      // sleeping, sees the returned batch (Loop::run).
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (loop.creditWanted.load(std::memory_order_relaxed)) loop.wake();
      napi_value result;
      napi_status status = napi_call_function(env, global, onBatch, 3, args, &result);
      napi_close_handle_scope(env, scope);
      if (closed_ || !pool_) return;  // JS stopped the engine inside onBatch
      if (status != napi_ok) {
        // The exception goes to 'uncaughtException'; the remaining batches
        // are delivered on the next call.
        ring();
        return;
      }
      if (++delivered >= kBatchesPerCall) {
        ring();
        return;
      }
    }
  }
}

}  // namespace edgepoll
