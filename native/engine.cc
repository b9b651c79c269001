// PLACEHOLDER until its owner lands the real file: registerEngine exports nothing yet.
#include <napi.h>
namespace edgepoll {
void registerEngine(Napi::Env, Napi::Object) {}
}  // namespace edgepoll
