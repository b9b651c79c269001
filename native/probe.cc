// PLACEHOLDER until its owner lands the real file: registerProbe exports nothing yet.
#include <napi.h>
namespace edgepoll {
void registerProbe(Napi::Env, Napi::Object) {}
}  // namespace edgepoll
