// Driver (see driver.h): turns of a loop from libuv callbacks. JS thread.
#include "driver.h"

#include "bridge.h"
#include "loop.h"

namespace edgepoll {

namespace {
// Turns per wake-up before libuv runs its other handles (timers, the JS
// thread's own sockets); the rest continues from a 0 ms timer.
constexpr int kTurnsPerWake = 16;

template <typename Handle>
void closeHandle(Handle* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
}
}  // namespace

int Driver::start() {
  uv_loop_t* uv = nullptr;
  if (napi_get_uv_event_loop(env_, &uv) != napi_ok || uv == nullptr) return -EINVAL;
  poll_ = new uv_poll_t();
  timer_ = new uv_timer_t();
  int err = uv_poll_init(uv, poll_, loop_.epollFd());
  if (err != 0) {
    delete poll_;
    delete timer_;
    poll_ = nullptr;
    timer_ = nullptr;
    return err;
  }
  uv_timer_init(uv, timer_);  // cannot fail
  poll_->data = this;
  timer_->data = this;
  loop_.startOnCaller();
  err = uv_poll_start(poll_, UV_READABLE, &Driver::onReadable);
  if (err != 0) {
    stop();
    return err;
  }
  if (!referenced_) unref();
  // Connections may already wait in the backlog: the first turn now.
  uv_timer_start(timer_, &Driver::onTimer, 0, 0);
  return 0;
}

void Driver::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (poll_) closeHandle(poll_);
  if (timer_) closeHandle(timer_);
  poll_ = nullptr;
  timer_ = nullptr;
}

void Driver::ref() {
  referenced_ = true;
  if (poll_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  if (timer_) uv_ref(reinterpret_cast<uv_handle_t*>(timer_));
}

void Driver::unref() {
  referenced_ = false;
  if (poll_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  if (timer_) uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
}

void Driver::onReadable(uv_poll_t* handle, int status, int) {
  if (status < 0) return;  // EBADF only once the loop is gone; stop() is then on its way
  static_cast<Driver*>(handle->data)->pump();
}

void Driver::onTimer(uv_timer_t* handle) { static_cast<Driver*>(handle->data)->pump(); }

void Driver::pump() {
  if (stopped_ || pumping_) return;
  pumping_ = true;
  int timeout = 0;
  for (int i = 0; i < kTurnsPerWake && !stopped_; i++) {
    timeout = loop_.turn();
    // JS may stop the engine in here (stop() then ran: no turn after it).
    int delivered = bridge_.deliver(env_);
    if (stopped_) break;
    // Replies JS just queued go out in the next turn; with none and nothing
    // pending the loop waits for its fd.
    if (delivered == 0 && timeout != 0 && loop_.inboxEmpty()) break;
    timeout = 0;
  }
  pumping_ = false;
  if (stopped_) return;
  if (timeout != 0) timeout = loop_.goingToSleep(timeout);
  uv_timer_stop(timer_);
  if (timeout >= 0) uv_timer_start(timer_, &Driver::onTimer, uint64_t(timeout), 0);
}

}  // namespace edgepoll
