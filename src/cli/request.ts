/**
 * `edgepoll request`: sends one request with the client and prints the reply
 * payload on standard output (the one-line way to try a server). `--tls`
 * (implied by `--ca`, `--cert`, `--key`, `--servername`) connects through
 * node:tls, e.g. to a load balancer terminating TLS (README "TLS at the load
 * balancer"); `--cert`/`--key` are the device certificate.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { connect } from '../client/client';
import type { ClientTlsOptions } from '../client/options';
import { EdgepollError } from '../errors';

export async function runRequestCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '7000' },
      type: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '5000' },
      tls: { type: 'boolean' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      servername: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const port = Number(values.port);
  const type = Number(values.type);
  const timeout = Number(values.timeout);
  let tls: ClientTlsOptions | undefined;
  try {
    tls = tlsOptions(values);
  } catch (error) {
    process.stderr.write(`edgepoll request: EINVALID_OPTION: ${(error as Error).message}\n`);
    return 2;
  }
  const client = connect({ host: values.host, port, reconnect: false, requestTimeout: timeout, ...(tls ? { tls } : {}) });
  client.on('error', () => {
    // the request's own rejection carries the reason
  });
  try {
    const reply = await client.request(type, positionals.join(' '));
    process.stdout.write(`${reply.toString('utf8')}\n`);
    return 0;
  } catch (error) {
    const err = error as EdgepollError;
    process.stderr.write(`edgepoll request: ${err.code ?? 'ERROR'}: ${err.message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

interface TlsFlags {
  tls?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
}

function readFlagFile(flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new Error(`--${flag} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

/** The client's `tls` option from the flags; undefined when none asks for TLS. */
function tlsOptions(flags: TlsFlags): ClientTlsOptions | undefined {
  const wanted = flags.tls || [flags.ca, flags.cert, flags.key, flags.servername].some((value) => value !== undefined);
  if (!wanted) return undefined;
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new Error('--cert and --key go together (the device certificate and its key)');
  const options: ClientTlsOptions = {};
  if (flags.ca !== undefined) options.ca = readFlagFile('ca', flags.ca);
  if (flags.cert !== undefined) options.cert = readFlagFile('cert', flags.cert);
  if (flags.key !== undefined) options.key = readFlagFile('key', flags.key);
  if (flags.servername !== undefined) options.servername = flags.servername;
  return options;
}
