/**
 * Real brokers for the bus tests: redis-server and nats-server (installed by
 * scripts/install-brokers.sh) started on free loopback ports with no
 * persistence, killed and restarted on the same port for fault tests, and
 * stopped when the suite ends.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export function have(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(check: () => Promise<boolean>, what: string, timeout = 15_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not start within ${timeout} ms`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A broker process on a fixed port that can be killed and started again there. */
export class Broker {
  child: ChildProcess | undefined;
  log = '';
  constructor(
    readonly kind: 'redis' | 'nats',
    readonly port: number,
    private readonly extra: string[] = [],
  ) {}

  get url(): string {
    return `${this.kind}://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const args =
      this.kind === 'redis'
        ? ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', ...this.extra]
        : ['-a', '127.0.0.1', '-p', String(this.port), ...this.extra];
    const child = spawn(this.kind === 'redis' ? 'redis-server' : 'nats-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (chunk) => (this.log += chunk));
    child.stderr!.on('data', (chunk) => (this.log += chunk));
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`${this.kind} exited: ${this.log}`);
      if (this.kind === 'redis') return (await this.redis('PING').catch(() => '')) === 'PONG';
      return accepts(this.port);
    }, `${this.kind}-server on ${this.port}`);
  }

  /** Kills the broker (SIGKILL: no goodbye to its clients) and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  /** One redis-cli command; its output trimmed. */
  redis(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const cli = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      cli.stdout!.on('data', (chunk) => (out += chunk));
      cli.once('error', reject);
      cli.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`redis-cli ${args.join(' ')}: ${code}`))));
    });
  }
}

export async function startBroker(kind: 'redis' | 'nats', extra: string[] = []): Promise<Broker> {
  const broker = new Broker(kind, await freePort(), extra);
  await broker.start();
  return broker;
}
