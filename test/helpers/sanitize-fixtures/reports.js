// Sorts sanitizer report files (ASAN_OPTIONS log_path=...) for
// scripts/sanitize.sh: prints the ones that are ours and exits 1 if any.
// Every ASan/UBSan error counts. A leak counts when an allocation was made by
// our code: among the frames between the allocator and the first frame of
// the node binary, one is in the addon (edgepoll sources, node-addon-api
// inlined into it). Node and V8 leak at process.exit() and worker teardown by
// design; those leaks have only node frames above the allocator and are
// counted, not reported.
// Usage: node reports.js <node binary path> <report files...>
'use strict';
const fs = require('node:fs');

const [nodeBinary, ...files] = process.argv.slice(2);
let ours = 0;
let theirs = 0;

function leakIsOurs(block) {
  const frames = block.split('\n').filter((line) => /^\s+#\d+ /.test(line));
  for (const frame of frames.slice(1)) {
    if (frame.includes(`(${nodeBinary}+`) || frame.includes('(/usr/bin/node+') || /\bv8::|\bnode::/.test(frame)) {
      return false;
    }
    if (/edgepoll|node-addon-api|\/native\//.test(frame)) return true;
  }
  return false;
}

for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  const leakReport = /ERROR: LeakSanitizer/.test(text) && !/ERROR: AddressSanitizer|runtime error:/.test(text);
  if (!leakReport) {
    ours++;
    process.stdout.write(`--- ${file}\n${text.split('\n').slice(0, 60).join('\n')}\n`);
    continue;
  }
  const blocks = text.split(/\n(?=(?:Direct|Indirect) leak of )/).slice(1);
  const mine = blocks.filter(leakIsOurs);
  theirs += blocks.length - mine.length;
  if (mine.length > 0) {
    ours++;
    process.stdout.write(`--- ${file}: ${mine.length} leak(s) allocated by the addon\n${mine.slice(0, 5).join('\n')}\n`);
  }
}
if (theirs > 0) process.stderr.write(`sanitize: ${theirs} leak record(s) inside node/V8 itself ignored\n`);
process.exit(ours > 0 ? 1 : 0);
