// Package test probe, ESM face: loads the installed edgepoll with import (and
// with require in the same process, which must give the same module instance,
// so the addon loads once), builds two servers with engine 'auto', listens and
// closes one, and prints one JSON line like probe.cjs.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import edgepoll, { createServer, nativeLoadError } from 'edgepoll';

const required = createRequire(import.meta.url)('edgepoll');

function mappedAddons() {
  const lines = fs.readFileSync('/proc/self/maps', 'utf8').split('\n');
  return [...new Set(lines.map((line) => line.split(/\s+/).slice(5).join(' ')).filter((file) => file.endsWith('.node')))];
}

const server = createServer({ engine: 'auto' });
const second = createServer({ engine: 'auto' });
const address = await server.listen({ host: '127.0.0.1', port: 0 });
await server.close();
await second.close();
const error = nativeLoadError();
process.stdout.write(
  JSON.stringify({
    face: 'import',
    engine: server.engine,
    listened: address.port > 0,
    addons: mappedAddons(),
    loadError: error ? error.message : null,
    sameInstance: required.createServer === createServer && edgepoll === required,
  }) + '\n',
);
