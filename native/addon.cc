// Module init of the engine addon: exports the Engine class, the error-name
// list and the codec probe (tests only). The load generator is its own addon
// (native/loadgen/binding.cc, loaded only by bench), so what serves holds only
// the engine. Context-aware: no globals, so the addon loads in several
// worker_threads at once; per-environment state lives with the objects each
// register function creates.
#include <napi.h>

#include "errors.h"

namespace edgepoll {
void registerEngine(Napi::Env env, Napi::Object exports);   // engine.cc
void registerProbe(Napi::Env env, Napi::Object exports);    // probe.cc
}  // namespace edgepoll

static Napi::Object init(Napi::Env env, Napi::Object exports) {
  Napi::Array names = Napi::Array::New(env, edgepoll::kErrorCount);
  for (uint32_t i = 0; i < edgepoll::kErrorCount; i++) names.Set(i, edgepoll::errorName(uint16_t(i)));
  exports.Set("errorNames", names);
  edgepoll::registerEngine(env, exports);
  edgepoll::registerProbe(env, exports);
  return exports;
}

NODE_API_MODULE(edgepoll, init)
