// One load-generator run, driven from its own controller thread: checks the
// target, raises the fd limit, starts the workers, walks the phases (ramp,
// warm-up, record, stop), publishes progress and merges the final report.
// Owns: the workers. Does not own: any Node-API value (binding.cc converts
// the plain structs). Threads: execute() blocks the calling (controller)
// thread for the whole run; cancel() may be called from any thread.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "load.h"
#include "worker.h"

namespace edgepoll {

class LoadRun {
 public:
  explicit LoadRun(const LoadOptions& options) : options_(options) {}
  // Runs the load; onProgress is called on this thread every progressMs.
  void execute(const std::function<void(const LoadProgress&)>& onProgress, LoadReport* report);
  // Ends the run early (the environment is going away): any thread.
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }

 private:
  bool waitUntil(uint64_t deadlineNs, const std::function<bool()>& done,
                 const std::function<void(const LoadProgress&)>& onProgress, const char* phase);
  uint64_t sum(LoadCounter LoadCounters::*field) const;

  LoadOptions options_;
  LoadShared shared_;
  std::vector<std::unique_ptr<LoadWorker>> workers_;
  std::atomic<bool> cancelled_{false};
  uint64_t startNs_ = 0;
  uint64_t lastProgressNs_ = 0;
  uint64_t lastMessages_ = 0;
};

}  // namespace edgepoll
