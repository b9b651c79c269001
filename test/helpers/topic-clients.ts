/** Spreads many topic subscribers over child processes (test/helpers/topic-fixtures/clients.js). */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export interface TopicClients {
  /** Sum over the children of the pushes they counted (after a short quiet period). */
  counts(): Promise<{ shared: number; personal: number }>;
  stop(): void;
}

export async function spawnClients(port: number, total: number, processes: number): Promise<TopicClients> {
  const script = path.join(__dirname, 'topic-fixtures', 'clients.js');
  const per = Math.ceil(total / processes);
  const children: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  for (let p = 0; p < processes; p++) {
    const first = p * per;
    const count = Math.min(per, total - first);
    const child = fork(script, [String(port), String(first), String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    ready.push(
      new Promise((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`topic client exited with ${code}`)));
      }),
    );
  }
  await Promise.all(ready);
  const ask = (child: ChildProcess) =>
    new Promise<{ shared: number; personal: number }>((resolve) => {
      child.once('message', (message: { counts: { shared: number; personal: number } }) => resolve(message.counts));
      child.send('counts?');
    });
  return {
    async counts() {
      let last = '';
      for (;;) {
        const all = await Promise.all(children.map(ask));
        const sum = all.reduce((a, b) => ({ shared: a.shared + b.shared, personal: a.personal + b.personal }), { shared: 0, personal: 0 });
        const now = JSON.stringify(sum);
        if (now === last) return sum;
        last = now;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    },
    stop() {
      for (const child of children) {
        child.removeAllListeners('exit');
        if (child.connected) child.send('stop');
        setTimeout(() => child.kill('SIGKILL'), 2000).unref();
      }
    },
  };
}
