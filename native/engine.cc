// The Engine class exported to JS (see engine.h) and registerEngine.
// Native errors become JS Error objects with an errno-name `code` here only.
#include "engine.h"

#include <unistd.h>

#include <cerrno>
#include <string>

#include "sys.h"

namespace edgepoll {

namespace {

const char* errnoName(int err) {
  switch (err) {
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case ENOSPC: return "ENOSPC";
    case EALREADY: return "EALREADY";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    default: return "EIO";
  }
}

void throwErrno(Napi::Env env, int err, const std::string& what) {
  Napi::Error error = Napi::Error::New(env, what + " failed: " + errnoName(err));
  error.Set("code", Napi::String::New(env, errnoName(err)));
  error.Set("errno", Napi::Number::New(env, -err));
  error.ThrowAsJavaScriptException();
}

double numberOption(const Napi::Object& options, const char* key, double fallback) {
  Napi::Value value = options.Get(key);
  return value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : fallback;
}

bool boolOption(const Napi::Object& options, const char* key, bool fallback) {
  Napi::Value value = options.Get(key);
  return value.IsBoolean() ? value.As<Napi::Boolean>().Value() : fallback;
}

std::string stringOption(const Napi::Object& options, const char* key, const char* fallback) {
  Napi::Value value = options.Get(key);
  return value.IsString() ? value.As<Napi::String>().Utf8Value() : fallback;
}

uint32_t clampU32(double value) { return value <= 0 ? 0 : value >= 4294967295.0 ? 4294967295u : uint32_t(value); }

bool bytesOf(const Napi::Value& value, const uint8_t** data, size_t* length) {
  if (!value.IsTypedArray()) return false;
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  if (array.TypedArrayType() != napi_uint8_array) return false;
  Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
  *data = bytes.Data();
  *length = bytes.ByteLength();
  return true;
}

}  // namespace

Napi::Function Engine::define(Napi::Env env) {
  return DefineClass(env, "Engine",
                     {InstanceMethod<&Engine::listen>("listen"), InstanceMethod<&Engine::submit>("submit"),
                      InstanceMethod<&Engine::broadcast>("broadcast"), InstanceMethod<&Engine::publish>("publish"),
                      InstanceMethod<&Engine::stopAccepting>("stopAccepting"), InstanceMethod<&Engine::trim>("trim"),
                      InstanceMethod<&Engine::stats>("stats"),
                      InstanceMethod<&Engine::stop>("stop"), InstanceMethod<&Engine::ref>("ref"),
                      InstanceMethod<&Engine::unref>("unref")});
}

Engine::Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "new Engine(options, onBatch)").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object options = info[0].As<Napi::Object>();
  LoopConfig config;
  uint32_t framing = clampU32(numberOption(options, "framing", 0));
  config.framing = framing <= 3 ? Framing(framing) : Framing::Frame;
  config.maxFrame = clampU32(numberOption(options, "maxFrame", 1024 * 1024));
  config.highWaterMark = uint64_t(numberOption(options, "highWaterMark", 1024 * 1024));
  config.maxBufferedAmount = uint64_t(numberOption(options, "maxBufferedAmount", 8 * 1024 * 1024));
  config.heartbeatInterval = clampU32(numberOption(options, "heartbeatInterval", 0));
  config.heartbeatTimeout = clampU32(numberOption(options, "heartbeatTimeout", 0));
  config.idleTimeout = clampU32(numberOption(options, "idleTimeout", 0));
  config.frameTimeout = clampU32(numberOption(options, "frameTimeout", 0));
  config.maxConnections = clampU32(numberOption(options, "maxConnections", 0));
  // Hidden, for tests only (not in docs/internals.md's option list): a narrower
  // generation reaches a slot's generation wrap in a few connections.
  uint32_t generationBits = clampU32(numberOption(options, "debugGenerationBits", 23));
  config.generationBits = generationBits < 1 ? 1 : generationBits > 23 ? 23 : generationBits;
  config.nativeEcho = boolOption(options, "nativeEcho", false);
  config.levelTriggered = stringOption(options, "triggerMode", "edge") == "level";
  config.proxyProtocol = boolOption(options, "proxyProtocol", false);
  config.proxyTimeout = clampU32(numberOption(options, "proxyTimeout", 3000));
  if (boolOption(options, "debugTinyBounds", false)) config.bounds = LoopBounds::tiny();
  double maxPartial = numberOption(options, "maxPartialBytes", 256.0 * 1024 * 1024);
  if (maxPartial >= 1) config.maxPartialBytes = uint64_t(maxPartial);
  Napi::Value trusted = options.Get("proxyTrusted");
  if (trusted.IsArray()) {
    // Validated in src/server/options.ts; an entry that still fails to parse trusts nothing.
    Napi::Array list = trusted.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      ProxyNetwork network;
      Napi::Value entry = list.Get(i);
      std::string text = entry.IsString() ? entry.As<Napi::String>().Utf8Value() : "";
      if (text == "unix") config.proxyTrustUnix = true;  // peers of a Unix socket listener (they have no address)
      else if (parseProxyNetwork(text, &network)) config.proxyTrusted.push_back(network);
    }
  }
  bool exclusive = stringOption(options, "acceptMode", "reuseport") == "exclusive";
  // threads: 0 = the loop on the JS thread (native/driver.h).
  uint32_t threads = clampU32(numberOption(options, "threads", 1));

  // The TSFN first, the cleanup hook second: hooks run in reverse order, so
  // ours stops the loops before Node tears the TSFN down.
  bridge_ = Bridge::create(env, info[1]);
  if (!bridge_) return;
  // The object keeps onBatch alive (the bridge only holds it weakly), so a
  // closure over the engine forms a cycle the GC can collect.
  info.This().As<Napi::Object>().DefineProperty(Napi::PropertyDescriptor::Value("onBatch", info[1], napi_default));
  pool_ = std::make_unique<Pool>(config, threads, exclusive, bridge_);
  bridge_->attach(pool_.get());
  if (threads == 0) {
    pool_->runOnCaller();
    bridge_->runOnJsThread();
  }
  int err = pool_->init();
  if (err != 0) {
    shutdown(false);
    throwErrno(env, err, "epoll_create");
    return;
  }
  napi_add_env_cleanup_hook(env_, &Engine::cleanupHook, this);
  hooked_ = true;
}

Engine::~Engine() {
  shutdown(true);
  if (hooked_) napi_remove_env_cleanup_hook(env_, &Engine::cleanupHook, this);
  hooked_ = false;
}

void Engine::cleanupHook(void* arg) {
  auto* engine = static_cast<Engine*>(arg);
  engine->hooked_ = false;
  engine->shutdown(true);
}

void Engine::shutdown(bool teardown) {
  if (stopped_) return;
  stopped_ = true;
  if (driver_) driver_->stop();  // no turn after this
  if (pool_) pool_->stop();  // joins: no loop rings the bridge after this
  if (bridge_) bridge_->close();
  bridge_ = nullptr;
  if (selfReferenced_ && !teardown) Unref();
  selfReferenced_ = false;
  listening_ = false;
}

Napi::Value Engine::listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (stopped_) {
    throwErrno(env, EINVAL, "listen on a stopped engine");
    return env.Undefined();
  }
  if (info[0].IsNumber()) {
    // An fd: a listening socket another process made (src/engines/native-workers*.ts); ours are dups of it.
    int fd = info[0].As<Napi::Number>().Int32Value();
    int bound = fd < 0 ? -EBADF : pool_->adopt(fd);
    if (bound < 0) {
      throwErrno(env, -bound, "listen on fd " + std::to_string(fd));
      return env.Undefined();
    }
    if (!listening(env)) return env.Undefined();
    return Napi::Number::New(env, bound);
  }
  std::string host = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "127.0.0.1";
  int port = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  int backlog = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 511;
  // A fourth argument, a path, means a Unix socket there (host and port unused).
  std::string path = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
  int bound = path.empty() ? pool_->listen(host, port, backlog) : pool_->listenUnix(path, backlog);
  if (bound < 0) {
    throwErrno(env, -bound, path.empty() ? "listen " + host + ":" + std::to_string(port) : "listen " + path);
    return env.Undefined();
  }
  if (!listening(env)) return env.Undefined();
  return Napi::Number::New(env, bound);
}

bool Engine::listening(Napi::Env env) {
  if (pool_->onCaller()) {
    driver_ = std::make_unique<Driver>(env_, pool_->loop(0), *bridge_);
    if (!wantRef_) driver_->unref();
    int err = driver_->start();
    if (err != 0) {
      shutdown(false);
      throwErrno(env, -err, "uv_poll_start");
      return false;
    }
  }
  listening_ = true;
  Ref();  // strong while listening: onBatch must stay reachable
  selfReferenced_ = true;
  if (wantRef_ && !driver_) bridge_->ref(env);
  return true;
}

Napi::Value Engine::submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data;
  size_t length;
  if (!info[0].IsNumber() || !bytesOf(info[1], &data, &length)) {
    Napi::TypeError::New(env, "submit(loop, Uint8Array, byteLength)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info[2].IsNumber()) {
    double limit = info[2].As<Napi::Number>().DoubleValue();
    if (limit >= 0 && limit < double(length)) length = size_t(limit);
  }
  if (stopped_) return Napi::Boolean::New(env, true);
  uint32_t loop = info[0].As<Napi::Number>().Uint32Value();
  return Napi::Boolean::New(env, pool_->submit(loop, data, length));
}

Napi::Value Engine::broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data;
  size_t length;
  if (!bytesOf(info[0], &data, &length)) {
    Napi::TypeError::New(env, "broadcast(Uint8Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (stopped_) return Napi::Boolean::New(env, true);
  return Napi::Boolean::New(env, pool_->broadcast(data, length));
}

// publish(topic: Uint8Array, frame: Uint8Array, exceptLoop, exceptSlot, exceptGeneration): boolean
Napi::Value Engine::publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* topic;
  size_t topicLength;
  const uint8_t* frame;
  size_t frameLength;
  if (info.Length() < 5 || !bytesOf(info[0], &topic, &topicLength) || !bytesOf(info[1], &frame, &frameLength) ||
      !info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber()) {
    Napi::TypeError::New(env, "publish(topic, frame, exceptLoop, exceptSlot, exceptGeneration)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (stopped_) return Napi::Boolean::New(env, true);
  std::string name(reinterpret_cast<const char*>(topic), topicLength);
  return Napi::Boolean::New(env, pool_->publish(name, frame, frameLength, info[2].As<Napi::Number>().Uint32Value(),
                                                info[3].As<Napi::Number>().Uint32Value(),
                                                info[4].As<Napi::Number>().Uint32Value()));
}

Napi::Value Engine::stopAccepting(const Napi::CallbackInfo& info) {
  if (!stopped_) pool_->stopAccepting();
  return info.Env().Undefined();
}

Napi::Value Engine::trim(const Napi::CallbackInfo& info) {
  if (!stopped_) pool_->trimSoon();
  return info.Env().Undefined();
}

Napi::Value Engine::stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  Napi::Array loops = Napi::Array::New(env);
  for (size_t i = 0; pool_ && i < pool_->size(); i++) {
    const LoopStats& s = pool_->loop(i).stats();
    Napi::Object loop = Napi::Object::New(env);
    loop.Set("connections", double(s.connections.load()));
    loop.Set("accepted", double(s.accepted.load()));
    loop.Set("rejected", double(s.rejected.load()));
    loop.Set("protocolErrors", double(s.protocolErrors.load()));
    loop.Set("bytesIn", double(s.bytesIn.load()));
    loop.Set("bytesOut", double(s.bytesOut.load()));
    loop.Set("batches", double(s.batches.load()));
    loop.Set("ringFull", double(s.ringFull.load()));
    loop.Set("acceptErrors", double(s.acceptErrors.load()));
    loop.Set("proxyErrors", double(s.proxyErrors.load()));
    loop.Set("slots", double(s.slots.load()));
    loop.Set("sweepDeferred", double(s.sweepDeferred.load()));
    loops.Set(uint32_t(i), loop);
  }
  result.Set("loops", loops);
  return result;
}

Napi::Value Engine::stop(const Napi::CallbackInfo& info) {
  shutdown(false);
  if (hooked_) napi_remove_env_cleanup_hook(env_, &Engine::cleanupHook, this);
  hooked_ = false;
  return info.Env().Undefined();
}

Napi::Value Engine::ref(const Napi::CallbackInfo& info) {
  wantRef_ = true;
  if (driver_ && !stopped_) driver_->ref();
  else if (listening_ && !stopped_) bridge_->ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value Engine::unref(const Napi::CallbackInfo& info) {
  wantRef_ = false;
  if (driver_ && !stopped_) driver_->unref();
  if (!stopped_ && bridge_) bridge_->unref(info.Env());
  return info.Env().Undefined();
}

namespace {

// createListener(host, port, backlog, reusePort) → { fd, port }. The fd is the
// caller's to pass on (child stdio) and close; it is CLOEXEC, so only a child
// given it explicitly inherits it.
Napi::Value createListener(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string host = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "127.0.0.1";
  int port = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  int backlog = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 511;
  bool reusePort = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  int fd = makeListener(host, port, backlog, reusePort);
  if (fd < 0) {
    throwErrno(env, -fd, "listen " + host + ":" + std::to_string(port));
    return env.Undefined();
  }
  int bound = boundPort(fd);
  if (bound < 0) {
    close(fd);
    throwErrno(env, -bound, "getsockname");
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", Napi::Number::New(env, fd));
  result.Set("port", Napi::Number::New(env, bound));
  return result;
}

}  // namespace

void registerEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", Engine::define(env));
  exports.Set("createListener", Napi::Function::New(env, createListener, "createListener"));
}

}  // namespace edgepoll
