// Test hook: runs the native Decoder over chunks from JS and returns what it
// delivered: decode(framing, maxFrame, role, chunks[, stopEvery]) ->
// { messages, error, midMessage }. With stopEvery = n the sink returns false
// after every n-th message (tests that a stopped feed drops the rest). So test/codec.test.ts and the differential test can compare the
// C++ codec with src/codec.ts byte for byte.
// Owns: nothing beyond one call. Does not own: the Decoder (codec.cc).
// Runs on: the JS thread only (a synchronous call).
#include <napi.h>

#include "codec.h"

namespace edgepoll {

namespace {

// Copies every message into a JS object; payloads are copied because
// Message::data is valid only during onMessage.
class ProbeSink : public MessageSink {
 public:
  ProbeSink(Napi::Env env, Napi::Array messages, uint32_t stopEvery)
      : env_(env), messages_(messages), stopEvery_(stopEvery) {}
  bool onMessage(const Message& message) override {
    Napi::Object item = Napi::Object::New(env_);
    item.Set("type", Napi::Number::New(env_, message.type));
    item.Set("flags", Napi::Number::New(env_, message.flags));
    item.Set("seq", Napi::Number::New(env_, message.seq));
    item.Set("payload", Napi::Buffer<uint8_t>::Copy(env_, message.length ? message.data : nullptr, message.length));
    messages_.Set(count_++, item);
    return stopEvery_ == 0 || count_ % stopEvery_ != 0;
  }

 private:
  Napi::Env env_;
  Napi::Array messages_;
  uint32_t stopEvery_;
  uint32_t count_ = 0;
};

Napi::Value decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsArray()) {
    Napi::TypeError::New(env, "decode(framing, maxFrame, role, chunks)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t framing = info[0].As<Napi::Number>().Uint32Value();
  uint32_t maxFrame = info[1].As<Napi::Number>().Uint32Value();
  uint32_t role = info[2].As<Napi::Number>().Uint32Value();
  if (framing > uint32_t(Framing::Raw) || role > 1) {
    Napi::RangeError::New(env, "framing must be 0-3 and role 0-1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t stopEvery = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().Uint32Value() : 0;
  Napi::Array chunks = info[3].As<Napi::Array>();
  Decoder decoder(Framing(framing), maxFrame, role == 0 ? Role::Server : Role::Client);
  Napi::Array messages = Napi::Array::New(env);
  ProbeSink sink(env, messages, stopEvery);
  ErrorCode code = kOK;
  for (uint32_t i = 0; i < chunks.Length(); i++) {
    Napi::Value chunk = chunks.Get(i);
    if (!chunk.IsTypedArray() || chunk.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Napi::TypeError::New(env, "chunks must be Uint8Array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint8Array bytes = chunk.As<Napi::Uint8Array>();
    code = decoder.feed(bytes.Data(), bytes.ByteLength(), sink);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("messages", messages);
  result.Set("error", Napi::String::New(env, code == kOK ? "" : errorName(code)));
  result.Set("midMessage", Napi::Boolean::New(env, decoder.midMessage()));
  return result;
}

}  // namespace

void registerProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("decode", Napi::Function::New(env, decode, "decode"));
}

}  // namespace edgepoll
