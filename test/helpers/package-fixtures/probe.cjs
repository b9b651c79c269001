// Package test probe, CommonJS face: loads the installed edgepoll with
// require, builds two servers with engine 'auto' (so a fallback warning must
// appear once, not twice), listens and closes one, and prints one JSON line:
// the engine chosen, the native files mapped into this process, the load error.
'use strict';
const fs = require('node:fs');
const edgepoll = require('edgepoll');

function mappedAddons() {
  const lines = fs.readFileSync('/proc/self/maps', 'utf8').split('\n');
  return [...new Set(lines.map((line) => line.split(/\s+/).slice(5).join(' ')).filter((file) => file.endsWith('.node')))];
}

async function main() {
  const server = edgepoll.createServer({ engine: 'auto' });
  const second = edgepoll.createServer({ engine: 'auto' });
  const address = await server.listen({ host: '127.0.0.1', port: 0 });
  await server.close();
  await second.close();
  const error = edgepoll.nativeLoadError();
  process.stdout.write(
    JSON.stringify({
      face: 'require',
      engine: server.engine,
      listened: address.port > 0,
      addons: mappedAddons(),
      loadError: error ? error.message : null,
    }) + '\n',
  );
}
main().catch((error) => {
  process.stderr.write(`probe failed: ${error.stack}\n`);
  process.exitCode = 1;
});
