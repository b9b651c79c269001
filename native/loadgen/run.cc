// The controller of one load-generator run (see run.h). Runs on the run's own
// controller thread, never on the JS thread.
#include "run.h"

#include <arpa/inet.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

namespace edgepoll {

namespace {
constexpr uint64_t kTickNs = 20'000'000;

// Every counter field, so sums and merges cannot forget one.
LoadCounter LoadCounters::*const kFields[] = {
    &LoadCounters::messages,     &LoadCounters::sent,          &LoadCounters::bytesReceived,
    &LoadCounters::errors,       &LoadCounters::mismatches,    &LoadCounters::connects,
    &LoadCounters::connectErrors, &LoadCounters::open,         &LoadCounters::serverCloses,
    &LoadCounters::pings,        &LoadCounters::missedPongs,   &LoadCounters::broadcasts,
    &LoadCounters::pushesTotal,
};

double toUs(uint64_t ns) { return double(ns) / 1000.0; }
}  // namespace

uint64_t LoadRun::sum(LoadCounter LoadCounters::*field) const {
  uint64_t total = 0;
  for (const auto& worker : workers_) total += (worker->counters().*field).get();
  return total;
}

bool LoadRun::waitUntil(uint64_t deadlineNs, const std::function<bool()>& done,
                        const std::function<void(const LoadProgress&)>& onProgress, const char* phase) {
  for (;;) {
    if (cancelled_.load(std::memory_order_relaxed)) return false;
    if (done && done()) return true;
    uint64_t now = loadNowNs();
    if (now >= deadlineNs) return false;
    uint64_t period = uint64_t(options_.progressMs) * 1'000'000u;
    if (period > 0 && now - lastProgressNs_ >= period) {
      LoadProgress progress;
      progress.elapsedSeconds = double(now - startNs_) / 1e9;
      progress.phase = phase;
      progress.open = sum(&LoadCounters::open);
      progress.messages = sum(&LoadCounters::messages);
      progress.errors = sum(&LoadCounters::errors) + sum(&LoadCounters::connectErrors);
      progress.mismatches = sum(&LoadCounters::mismatches);
      double seconds = double(now - lastProgressNs_) / 1e9;
      progress.ratePerSecond = progress.messages >= lastMessages_ ? double(progress.messages - lastMessages_) / seconds : 0;
      lastMessages_ = progress.messages;
      lastProgressNs_ = now;
      if (onProgress) onProgress(progress);
    }
    uint64_t wait = std::min(kTickNs, deadlineNs - now);
    std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
  }
}

void LoadRun::execute(const std::function<void(const LoadProgress&)>& onProgress, LoadReport* report) {
  uint32_t address = ntohl(options_.target.sin_addr.s_addr);
  if ((address >> 24) != 127) {
    report->error = "the load generator only targets loopback (127.0.0.0/8)";
    return;
  }
  // The soft fd limit is often 1024; the hard one is what this box allows.
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    if (limit.rlim_cur < limit.rlim_max) {
      limit.rlim_cur = limit.rlim_max;
      setrlimit(RLIMIT_NOFILE, &limit);
      getrlimit(RLIMIT_NOFILE, &limit);
    }
    report->fdLimit = limit.rlim_cur;
    if (uint64_t(options_.connections) + 64 > limit.rlim_cur) {
      report->error = "needs " + std::to_string(options_.connections + 64) + " file descriptors; the limit is " +
                      std::to_string(limit.rlim_cur);
      return;
    }
  }
  uint32_t threads = std::max<uint32_t>(1, std::min(options_.threads, options_.connections));
  // Broadcast senders all live on worker 0, so its pacing clock is the only one.
  if (options_.mode == LoadMode::Broadcast) {
    options_.senders = std::max<uint32_t>(1, std::min(options_.senders, options_.connections / threads));
  }
  for (uint32_t i = 0; i < threads; i++) {
    uint32_t first = uint32_t(uint64_t(options_.connections) * i / threads);
    uint32_t next = uint32_t(uint64_t(options_.connections) * (i + 1) / threads);
    workers_.push_back(std::make_unique<LoadWorker>(options_, shared_, first, next - first));
    shared_.all.push_back(&workers_.back()->counters());
  }
  startNs_ = lastProgressNs_ = loadNowNs();
  for (auto& worker : workers_) worker->start();

  bool unreachable = false;
  if (options_.mode != LoadMode::Churn) {
    uint64_t target = options_.connections;
    // Give up early when nothing connects at all (wrong port, no server):
    // three failed attempts per connection and not one success.
    uint64_t hopeless = std::max<uint64_t>(3, 3 * target);
    waitUntil(startNs_ + uint64_t(options_.rampTimeoutSeconds * 1e9),
              [&] {
                unreachable = sum(&LoadCounters::connects) == 0 && sum(&LoadCounters::connectErrors) >= hopeless;
                return unreachable || sum(&LoadCounters::open) >= target;
              },
              onProgress, "ramp");
  }
  if (unreachable) {
    shared_.phase.store(int(LoadPhase::Stop), std::memory_order_release);
    for (auto& worker : workers_) worker->join();
    report->error = "could not connect to the target";
    for (auto& worker : workers_) {
      if (!worker->firstError().empty()) {
        report->error += " (" + worker->firstError() + ")";
        break;
      }
    }
    return;
  }
  uint64_t now = loadNowNs();
  report->rampSeconds = double(now - startNs_) / 1e9;
  shared_.phase.store(int(LoadPhase::Warmup), std::memory_order_release);
  waitUntil(now + uint64_t(options_.warmupSeconds * 1e9), nullptr, onProgress, "warmup");

  report->opened = sum(&LoadCounters::open);
  lastMessages_ = 0;
  uint64_t recordStart = loadNowNs();
  shared_.phase.store(int(LoadPhase::Record), std::memory_order_release);
  waitUntil(recordStart + uint64_t(options_.durationSeconds * 1e9), nullptr, onProgress, "record");
  uint64_t recordEnd = loadNowNs();
  // Counters only grow in the Record phase, so they freeze at this store
  // (give or take the replies a worker is handling at this very moment).
  shared_.phase.store(int(LoadPhase::Stop), std::memory_order_release);
  for (auto& worker : workers_) worker->join();

  Histogram merged;
  for (auto& worker : workers_) {
    for (auto field : kFields) (report->totals.*field).add((worker->counters().*field).get());
    merged.merge(worker->histogram());
    report->loadgenCpuSeconds += worker->cpuSeconds();
    if (report->firstError.empty()) report->firstError = worker->firstError();
  }
  report->durationSeconds = double(recordEnd - recordStart) / 1e9;
  report->totalSeconds = double(recordEnd - startNs_) / 1e9;
  uint64_t messages = report->totals.messages.get();
  report->messagesPerSecond = report->durationSeconds > 0 ? double(messages) / report->durationSeconds : 0;
  LoadLatency& latency = report->latency;
  latency.count = merged.count();
  latency.minUs = toUs(merged.min());
  latency.meanUs = merged.mean() / 1000.0;
  latency.p50Us = toUs(merged.percentile(0.50));
  latency.p90Us = toUs(merged.percentile(0.90));
  latency.p99Us = toUs(merged.percentile(0.99));
  latency.p999Us = toUs(merged.percentile(0.999));
  latency.maxUs = toUs(merged.max());
}

}  // namespace edgepoll
