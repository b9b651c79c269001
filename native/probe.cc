// Test hook: runs the native Decoder over chunks from JS and returns what it
// delivered: decode(framing, maxFrame, role, chunks[, stopEvery]) ->
// { messages, error, midMessage }. With stopEvery = n the sink returns false
// after every n-th message (tests that a stopped feed drops the rest). So test/protocol/codec.test.ts and the differential test can compare the
// C++ codec with src/protocol/codec.ts byte for byte.
// Also proxyParse / proxyTrust over native/proxy.cc (see below).
// Owns: nothing beyond one call. Does not own: the Decoder (codec.cc).
// Runs on: the JS thread only (a synchronous call).
#include <napi.h>

#include "codec.h"
#include "proxy.h"

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

// proxyParse(chunks) -> { status: 'need-more'|'done'|'error', consumed, version,
// hasAddress, sourceAddress, sourcePort, destinationAddress, destinationPort,
// tls: null or a Buffer of the TLS details as the OPEN record carries them }:
// the native PROXY header parser fed chunk by chunk (test/proxy/proxy.test.ts
// compares it with src/proxy/header.ts). `consumed` counts header bytes over all chunks.
Napi::Value proxyParse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "proxyParse(chunks)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array chunks = info[0].As<Napi::Array>();
  ProxyParser parser;
  size_t consumed = 0;
  for (uint32_t i = 0; i < chunks.Length(); i++) {
    Napi::Value chunk = chunks.Get(i);
    if (!chunk.IsTypedArray() || chunk.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Napi::TypeError::New(env, "chunks must be Uint8Array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint8Array bytes = chunk.As<Napi::Uint8Array>();
    ProxyResult result = parser.feed(bytes.Data(), bytes.ByteLength());
    consumed += result.consumed;
    if (result.status != ProxyStatus::NeedMore) break;
  }
  ProxyStatus status = parser.status();
  Napi::Object result = Napi::Object::New(env);
  result.Set("status", status == ProxyStatus::Done ? "done" : status == ProxyStatus::Error ? "error" : "need-more");
  result.Set("consumed", double(status == ProxyStatus::Error ? 0 : consumed));
  result.Set("version", parser.version());
  result.Set("hasAddress", parser.hasAddress());
  result.Set("sourceAddress", parser.sourceAddress());
  result.Set("sourcePort", parser.sourcePort());
  result.Set("destinationAddress", parser.destinationAddress());
  result.Set("destinationPort", parser.destinationPort());
  if (const ProxyTls* tls = parser.tls()) {
    std::string encoded;
    appendProxyTls(*tls, &encoded);
    result.Set("tls", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(encoded.data()), encoded.size()));
  } else {
    result.Set("tls", env.Null());
  }
  return result;
}

// proxyTrust(networks, address) -> boolean, or null when a network or the
// address does not parse: the native trusted-source check.
Napi::Value proxyTrust(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsString()) {
    Napi::TypeError::New(env, "proxyTrust(networks, address)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<ProxyNetwork> networks;
  for (uint32_t i = 0; i < list.Length(); i++) {
    ProxyNetwork network;
    Napi::Value entry = list.Get(i);
    if (!entry.IsString() || !parseProxyNetwork(entry.As<Napi::String>().Utf8Value(), &network)) return env.Null();
    networks.push_back(network);
  }
  std::string text = info[1].As<Napi::String>().Utf8Value();
  uint8_t address[16] = {0};
  if (text.find(':') != std::string::npos) {
    if (!parseIpv6(text.data(), text.size(), address)) return env.Null();
  } else {
    if (!parseIpv4(text.data(), text.size(), address + 12)) return env.Null();
    address[10] = address[11] = 0xFF;
  }
  return Napi::Boolean::New(env, proxyTrusted(networks, address));
}

}  // namespace

void registerProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("decode", Napi::Function::New(env, decode, "decode"));
  exports.Set("proxyParse", Napi::Function::New(env, proxyParse, "proxyParse"));
  exports.Set("proxyTrust", Napi::Function::New(env, proxyTrust, "proxyTrust"));
}

}  // namespace edgepoll
