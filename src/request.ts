/**
 * `edgepoll request`: sends one request with the client and prints the reply
 * payload on standard output (the one-line way to try a server).
 */
import { parseArgs } from 'node:util';
import { connect } from './client';
import { EdgepollError } from './errors';

export async function runRequestCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '7000' },
      type: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '5000' },
    },
    allowPositionals: true,
    strict: true,
  });
  const port = Number(values.port);
  const type = Number(values.type);
  const timeout = Number(values.timeout);
  const client = connect({ host: values.host, port, reconnect: false, requestTimeout: timeout });
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
