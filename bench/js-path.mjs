// The native engine's JS-thread cost per message, without sockets or loop
// threads: synthetic batches (docs/internals.md "Batches") of ECHO requests go
// straight into the engine's batch callback, through the server, dispatcher
// and demo handler, and the replies into the command buffer; the addon's
// Engine is replaced by a stub whose submit() takes everything. What the loops
// and the kernel cost is not in it (bench/ab-cpu.mjs measures that); what is
// in it is deterministic enough to compare two builds on a loaded machine.
//
//   node bench/js-path.mjs DIR_A DIR_B …   (each DIR holds dist/; runs each in its own process, alternating)
// env: JS_ROUNDS (5), JS_BATCHES (400 per round), JS_RECORDS (3200 per batch),
//      JS_CONNECTIONS (100), JS_PAYLOAD (64), JS_GENERATION (1; ≥ 2 makes ids heap numbers)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const env = (key, fallback) => Number(process.env[key] ?? fallback);

if (process.argv[2] === '--child') {
  const dir = process.argv[3];
  const require = createRequire(path.join(dir, 'dist', 'index.js'));
  // Either layout: src/ grouped by role (dist/engines/native/, dist/cli/) or the older flat one.
  const either = (...names) => require(names.find((n) => fs.existsSync(path.join(dir, 'dist', n))) ?? names[0]);
  const binding = either('./engines/native/binding.js', './binding.js');
  const addon = binding.tryLoadNative();
  let onBatch;
  let submitted = 0;
  addon.Engine = class {
    constructor(_options, callback) {
      onBatch = callback;
    }
    listen() {
      return 1;
    }
    submit(_loop, _bytes, length) {
      submitted += length;
      return true;
    }
    broadcast() {
      return true;
    }
    publish() {
      return true;
    }
    stopAccepting() {}
    stats() {
      return { loops: [{}] };
    }
    stop() {}
    ref() {}
    unref() {}
  };
  const { createServer } = require('./index.js');
  const { installDemo } = either('./cli/demo.js', './demo.js');
  const server = createServer({ engine: 'native', threads: 1 });
  installDemo(server);
  await server.listen(0);
  const connections = env('JS_CONNECTIONS', 100);
  const generation = env('JS_GENERATION', 1);
  const payload = env('JS_PAYLOAD', 64);
  const records = env('JS_RECORDS', 3200);
  const encode = (list) => {
    const slab = list.reduce((n, r) => n + r.bytes.length, 0);
    const out = Buffer.alloc(list.length * 32 + slab);
    let at = list.length * 32;
    list.forEach((r, i) => {
      const o = i * 32;
      out[o] = r.kind;
      out[o + 1] = r.flags ?? 0;
      out.writeUInt16LE(r.type ?? 0, o + 2);
      out.writeUInt32LE(r.slot, o + 4);
      out.writeUInt32LE(generation, o + 8);
      out.writeUInt32LE(r.seq ?? 0, o + 12);
      out.writeUInt32LE(at - list.length * 32, o + 16);
      out.writeUInt32LE(r.bytes.length, o + 20);
      out.writeUInt32LE(r.value ?? 0, o + 24);
      r.bytes.copy(out, at);
      at += r.bytes.length;
    });
    return out.buffer.slice(out.byteOffset, out.byteOffset + out.length);
  };
  const opens = Array.from({ length: connections }, (_, slot) => ({ kind: 1, slot, value: 40000 + slot, bytes: Buffer.from('127.0.0.1', 'latin1') }));
  onBatch(0, encode(opens), opens.length);
  const messages = Array.from({ length: records }, (_, i) => ({ kind: 2, type: 1, slot: i % connections, seq: 1 + i, bytes: Buffer.alloc(payload, i & 0xff) }));
  const batch = encode(messages);
  const batches = env('JS_BATCHES', 400);
  const run = () => {
    const start = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    // A fresh ArrayBuffer per batch, as the bridge hands them over.
    for (let i = 0; i < batches; i++) onBatch(0, batch.slice(0), records);
    const used = process.cpuUsage(cpu);
    return { wall: Number(process.hrtime.bigint() - start) / (batches * records), cpu: ((used.user + used.system) * 1000) / (batches * records) };
  };
  run(); // warm-up: optimized code
  submitted = 0;
  const result = run();
  // Every request answered: a 12-byte frame header + the payload each, and a
  // 16-byte command header per reply, or per run of replies to one connection
  // where the engine merges consecutive writes.
  const frames = batches * records * (12 + payload);
  if (submitted < frames + batches * Math.min(records, connections) * 16 || submitted > frames + batches * records * 16) {
    throw new Error(`replies: ${submitted} bytes submitted`);
  }
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

const dirs = process.argv.slice(2);
const rounds = env('JS_ROUNDS', 5);
const results = new Map(dirs.map((d) => [d, []]));
for (let round = 1; round <= rounds; round++) {
  for (const dir of dirs) {
    const out = JSON.parse(execFileSync(process.execPath, [self, '--child', path.resolve(dir)], { encoding: 'utf8', env: process.env }));
    results.get(dir).push(out);
    process.stderr.write(`round ${round} ${path.basename(dir).padEnd(14)} ${out.cpu.toFixed(1)} ns CPU/msg (${out.wall.toFixed(1)} ns wall)\n`);
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
console.log('| build | JS-thread ns CPU/msg (median) | min |');
console.log('|---|---|---|');
for (const [dir, rows] of results) {
  console.log(`| ${path.basename(dir)} | ${median(rows.map((r) => r.cpu)).toFixed(1)} | ${Math.min(...rows.map((r) => r.cpu)).toFixed(1)} |`);
}
