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

// An ArrayBuffer of `size` bytes whose memory is left as malloc gave it: the
// batch is copied over all of it at once. napi_create_arraybuffer zero-fills
// (memset of up to the batch cap, 1.7 % of the server's S3 profile);
// napi_create_buffer does not (node::Buffer::New allocates without the zero
// fill), and its Buffer is a whole-buffer view, so its ArrayBuffer is ours alone.
bool uninitializedArrayBuffer(napi_env env, size_t size, void** data, napi_value* arrayBuffer) {
  napi_value buffer;
  size_t length = 0;
  size_t offset = 0;
  *data = nullptr;
  if (napi_create_buffer(env, size, data, &buffer) == napi_ok && *data != nullptr &&
      napi_get_typedarray_info(env, buffer, nullptr, &length, nullptr, arrayBuffer, &offset) == napi_ok && offset == 0) {
    return true;
  }
  // Not expected from Node; the zero-filled way still works.
  *data = nullptr;
  return napi_create_arraybuffer(env, size, data, arrayBuffer) == napi_ok && *data != nullptr;
}
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
  if (pending_.exchange(true) || onJsThread_) return;
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
  pool_ = nullptr;  // async_ goes in finalize(), which has an env
  napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
}

void Bridge::finalize(napi_env env, void* data, void*) {
  auto* bridge = static_cast<Bridge*>(data);
  if (env && bridge->onBatch_) napi_delete_reference(env, bridge->onBatch_);
  if (env && bridge->async_) napi_async_destroy(env, bridge->async_);
  delete bridge;
}

void Bridge::callJs(napi_env env, napi_value, void* context, void*) {
  auto* bridge = static_cast<Bridge*>(context);
  if (env == nullptr || bridge->closed_) return;  // environment going away / engine stopped
  napi_value onBatch = nullptr;
  if (napi_get_reference_value(env, bridge->onBatch_, &onBatch) != napi_ok || onBatch == nullptr) return;
  bridge->drain(env, onBatch);
}

int Bridge::deliver(napi_env env) {
  if (!pending_.load(std::memory_order_relaxed) || closed_ || !pool_) return 0;
  napi_handle_scope handles;
  if (napi_open_handle_scope(env, &handles) != napi_ok) return 0;
  int delivered = 0;
  napi_value onBatch = nullptr;
  napi_value resource;
  if (!async_ && napi_create_object(env, &resource) == napi_ok) {
    napi_value name;
    napi_create_string_utf8(env, "edgepoll", NAPI_AUTO_LENGTH, &name);
    if (napi_async_init(env, resource, name, &async_) != napi_ok) async_ = nullptr;
  }
  napi_value global;
  napi_callback_scope scope = nullptr;
  if (async_ && napi_get_reference_value(env, onBatch_, &onBatch) == napi_ok && onBatch != nullptr &&
      napi_get_global(env, &global) == napi_ok && napi_open_callback_scope(env, global, async_, &scope) == napi_ok) {
    delivered = drain(env, onBatch);
    bool thrown = false;
    napi_value error;
    if (napi_is_exception_pending(env, &thrown) == napi_ok && thrown &&
        napi_get_and_clear_last_exception(env, &error) == napi_ok) {
      napi_fatal_exception(env, error);  // 'uncaughtException', as a TSFN call would
    }
    napi_close_callback_scope(env, scope);
  }
  napi_close_handle_scope(env, handles);
  return delivered;
}

int Bridge::drain(napi_env env, napi_value onBatch) {
  // Cleared first: a batch pushed while we drain rings again.
  pending_ = false;
  if (closed_ || !pool_) return 0;
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
      if (!uninitializedArrayBuffer(env, batch->bytes(), &bytes, &args[1])) {
        // Only when the environment is terminating (worker.terminate()) or
        // out of memory: no JS will see this batch.
        delete batch;
        napi_close_handle_scope(env, scope);
        return delivered;
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
      ++delivered;
      if (closed_ || !pool_) return delivered;  // JS stopped the engine inside onBatch
      if (status != napi_ok) {
        // The exception goes to 'uncaughtException'; the remaining batches
        // are delivered on the next call.
        ring();
        return delivered;
      }
      if (delivered >= kBatchesPerCall) {
        ring();
        return delivered;
      }
    }
  }
  return delivered;
}

}  // namespace edgepoll
