// PLACEHOLDER until its owner lands the real file: registerLoadgen exports nothing yet.
#include <napi.h>
namespace edgepoll {
void registerLoadgen(Napi::Env, Napi::Object) {}
}  // namespace edgepoll
