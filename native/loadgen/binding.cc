// Node-API glue and module init of the load generator, an addon of its own
// (edgepoll_loadgen.node, loaded only by src/cli/bench.ts, so the engine addon
// that serves does not carry it): exports.runLoad(options, onProgress?) →
// Promise<report>. Owns: one RunState per call (options, controller thread,
// its own ThreadSafeFunction for progress, the promise). Does not own: the
// load itself (run.cc, worker*.cc, no Node-API there).
// Threads: runLoad and every callback run on the JS thread; the load runs on
// a controller thread plus its worker threads and reaches JS only through
// this call's ThreadSafeFunction (bounded queue: progress is dropped, never
// queued without bound, when JS is busy).
#include <arpa/inet.h>
#include <napi.h>

#include <memory>
#include <string>
#include <thread>

#include "run.h"

namespace edgepoll {

namespace {

struct RunState {
  explicit RunState(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  LoadOptions options;
  LoadReport report;
  std::string target;
  std::unique_ptr<LoadRun> run;
  std::thread thread;
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction progress;
};

const char* modeName(LoadMode mode) {
  switch (mode) {
    case LoadMode::RequestReply: return "rr";
    case LoadMode::Churn: return "churn";
    case LoadMode::Idle: return "idle";
    case LoadMode::Broadcast: return "broadcast";
  }
  return "rr";
}

// Reads a number option; false (with *error set) when present but not a
// finite number inside [low, high].
bool readNumber(Napi::Object options, const char* key, double low, double high, double* out, std::string* error) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined() || value.IsNull()) return true;
  double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1e300;
  if (!(number >= low && number <= high)) {
    *error = std::string("runLoad: ") + key + " must be a number from " + std::to_string(low) + " to " + std::to_string(high);
    return false;
  }
  *out = number;
  return true;
}

bool readString(Napi::Object options, const char* key, std::string* out) {
  Napi::Value value = options.Get(key);
  if (value.IsString()) *out = value.As<Napi::String>().Utf8Value();
  return value.IsUndefined() || value.IsString();
}

std::string parseOptions(Napi::Object js, LoadOptions* options, std::string* target) {
  std::string error, host = "127.0.0.1", mode = "rr", framing = "frame";
  if (!readString(js, "host", &host) || !readString(js, "mode", &mode) || !readString(js, "framing", &framing)) {
    return "runLoad: host, mode and framing must be strings";
  }
  if (host == "localhost") host = "127.0.0.1";
  options->target.sin_family = AF_INET;
  if (inet_pton(AF_INET, host.c_str(), &options->target.sin_addr) != 1) return "runLoad: host must be an IPv4 address, got " + host;
  double port = 0, connections = options->connections, depth = options->depth, payload = options->payload;
  double duration = options->durationSeconds, warmup = options->warmupSeconds, ramp = options->rampTimeoutSeconds;
  double interval = options->intervalMs, threads = options->threads, progress = options->progressMs;
  double senders = options->senders, rate = options->rate, type = options->requestType, sources = -1;
  if (!readNumber(js, "port", 1, 65535, &port, &error) || !readNumber(js, "connections", 1, 1e6, &connections, &error) ||
      !readNumber(js, "depth", 1, 4096, &depth, &error) || !readNumber(js, "payload", 0, 16 * 1024 * 1024, &payload, &error) ||
      !readNumber(js, "duration", 0, 86400, &duration, &error) || !readNumber(js, "warmup", 0, 3600, &warmup, &error) ||
      !readNumber(js, "rampTimeout", 0, 3600, &ramp, &error) || !readNumber(js, "interval", 1, 3.6e6, &interval, &error) ||
      !readNumber(js, "threads", 1, 64, &threads, &error) || !readNumber(js, "progressInterval", 0, 3.6e6, &progress, &error) ||
      !readNumber(js, "senders", 1, 1e6, &senders, &error) || !readNumber(js, "rate", 0, 1e7, &rate, &error) ||
      !readNumber(js, "type", 1, 0xFEFF, &type, &error) || !readNumber(js, "sourceAddresses", 0, 250, &sources, &error)) {
    return error;
  }
  if (port == 0) return "runLoad: port is required";
  if (mode == "rr") options->mode = LoadMode::RequestReply;
  else if (mode == "churn") options->mode = LoadMode::Churn;
  else if (mode == "idle") options->mode = LoadMode::Idle;
  else if (mode == "broadcast") options->mode = LoadMode::Broadcast;
  else return "runLoad: mode must be rr, churn, idle or broadcast, got " + mode;
  if (framing != "frame" && framing != "raw") return "runLoad: framing must be frame or raw, got " + framing;
  options->rawFraming = framing == "raw";
  if (options->rawFraming && options->mode != LoadMode::RequestReply) return "runLoad: raw framing only in rr mode";
  if (options->rawFraming && payload < 1) return "runLoad: raw framing needs a payload of at least 1 byte";
  options->target.sin_port = htons(uint16_t(port));
  options->connections = uint32_t(connections);
  options->depth = uint32_t(depth);
  options->payload = uint32_t(payload);
  options->durationSeconds = duration;
  options->warmupSeconds = warmup;
  options->rampTimeoutSeconds = ramp;
  options->intervalMs = uint32_t(interval);
  options->threads = uint32_t(threads);
  options->progressMs = uint32_t(progress);
  options->senders = uint32_t(senders);
  options->rate = uint32_t(rate);
  options->requestType = uint16_t(type);
  // Churn leaves a TIME_WAIT per cycle and thousands of connections need
  // thousands of ports: spread both over several source addresses.
  if (sources < 0) sources = options->mode == LoadMode::Churn ? 8 : options->connections >= 5000 ? 4 : 0;
  options->sourceAddresses = uint32_t(sources);
  *target = host + ":" + std::to_string(int(port));
  return "";
}

Napi::Object latencyObject(Napi::Env env, const LoadLatency& latency) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("count", double(latency.count));
  out.Set("minUs", latency.minUs);
  out.Set("meanUs", latency.meanUs);
  out.Set("p50Us", latency.p50Us);
  out.Set("p90Us", latency.p90Us);
  out.Set("p99Us", latency.p99Us);
  out.Set("p999Us", latency.p999Us);
  out.Set("maxUs", latency.maxUs);
  return out;
}

Napi::Object reportObject(Napi::Env env, const RunState& state) {
  const LoadOptions& o = state.options;
  const LoadReport& r = state.report;
  const LoadCounters& t = r.totals;
  Napi::Object out = Napi::Object::New(env);
  out.Set("mode", modeName(o.mode));
  out.Set("framing", o.rawFraming ? "raw" : "frame");
  out.Set("target", state.target);
  out.Set("connections", double(o.connections));
  out.Set("depth", double(o.depth));
  out.Set("payload", double(o.payload));
  out.Set("threads", double(o.threads));
  out.Set("sourceAddresses", double(o.sourceAddresses));
  out.Set("durationSeconds", r.durationSeconds);
  out.Set("rampSeconds", r.rampSeconds);
  out.Set("totalSeconds", r.totalSeconds);
  out.Set("opened", double(r.opened));
  out.Set("messages", double(t.messages.get()));
  out.Set("messagesPerSecond", r.messagesPerSecond);
  out.Set("sent", double(t.sent.get()));
  out.Set("bytesReceived", double(t.bytesReceived.get()));
  out.Set("errors", double(t.errors.get()));
  out.Set("mismatches", double(t.mismatches.get()));
  out.Set("connects", double(t.connects.get()));
  out.Set("connectErrors", double(t.connectErrors.get()));
  out.Set("serverCloses", double(t.serverCloses.get()));
  out.Set("pings", double(t.pings.get()));
  out.Set("missedPongs", double(t.missedPongs.get()));
  out.Set("broadcasts", double(t.broadcasts.get()));
  out.Set("latency", latencyObject(env, r.latency));
  out.Set("loadgenCpuSeconds", r.loadgenCpuSeconds);
  out.Set("fdLimit", double(r.fdLimit));
  out.Set("firstError", r.firstError.empty() ? env.Null() : Napi::String::New(env, r.firstError));
  return out;
}

void deliverProgress(Napi::Env env, Napi::Function callback, LoadProgress* progress) {
  std::unique_ptr<LoadProgress> owned(progress);
  if (env == nullptr || callback.IsEmpty()) return;  // the environment is closing
  Napi::Object out = Napi::Object::New(env);
  out.Set("elapsedSeconds", progress->elapsedSeconds);
  out.Set("phase", progress->phase);
  out.Set("open", double(progress->open));
  out.Set("messages", double(progress->messages));
  out.Set("errors", double(progress->errors));
  out.Set("mismatches", double(progress->mismatches));
  out.Set("ratePerSecond", progress->ratePerSecond);
  callback.Call({out});
}

// Runs on the JS thread once the controller thread has released the
// ThreadSafeFunction (or the environment is torn down): settles the promise.
void finishRun(Napi::Env env, RunState* state) {
  std::unique_ptr<RunState> owned(state);
  state->run->cancel();  // only matters at environment teardown
  if (state->thread.joinable()) state->thread.join();
  if (!state->report.error.empty()) {
    state->deferred.Reject(Napi::Error::New(env, state->report.error).Value());
  } else {
    state->deferred.Resolve(reportObject(env, *state));
  }
}

Napi::Value runLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = std::make_unique<RunState>(env);
  Napi::Promise promise = state->deferred.Promise();
  if (!info[0].IsObject()) {
    state->deferred.Reject(Napi::TypeError::New(env, "runLoad: options must be an object").Value());
    return promise;
  }
  std::string error = parseOptions(info[0].As<Napi::Object>(), &state->options, &state->target);
  if (!error.empty()) {
    state->deferred.Reject(Napi::TypeError::New(env, error).Value());
    return promise;
  }
  Napi::Function callback = info[1].IsFunction() ? info[1].As<Napi::Function>()
                                                 : Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  state->run = std::make_unique<LoadRun>(state->options);
  RunState* raw = state.release();
  // Queue of 4: progress is a snapshot, a dropped one is replaced by the next.
  raw->progress = Napi::ThreadSafeFunction::New(env, callback, "edgepoll.runLoad", 4, 1, raw,
                                                [](Napi::Env env, void*, RunState* state) { finishRun(env, state); },
                                                static_cast<void*>(nullptr));
  raw->thread = std::thread([raw] {
    raw->run->execute(
        [raw](const LoadProgress& progress) {
          auto* copy = new LoadProgress(progress);
          if (raw->progress.NonBlockingCall(copy, deliverProgress) != napi_ok) delete copy;
        },
        &raw->report);
    raw->progress.Release();
  });
  return promise;
}

}  // namespace

Napi::Object registerLoadgen(Napi::Env env, Napi::Object exports) {
  exports.Set("runLoad", Napi::Function::New(env, runLoad, "runLoad"));
  return exports;
}

}  // namespace edgepoll

static Napi::Object init(Napi::Env env, Napi::Object exports) { return edgepoll::registerLoadgen(env, exports); }

NODE_API_MODULE(edgepoll_loadgen, init)
