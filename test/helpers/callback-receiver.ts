import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ReceivedCallback {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface CallbackReceiver {
  readonly port: number;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly received: readonly ReceivedCallback[];
  /** The next request gets this answer instead of 200. */
  answerNext(answer: { status: number; headers?: Record<string, string> }): void;
  /** Waits (polling, generously) until `count` requests arrived, and returns them. */
  waitFor(count: number, timeoutInMs?: number): Promise<readonly ReceivedCallback[]>;
  reset(): void;
  close(): Promise<void>;
}

/** A local receiver of callbacks on a free loopback port, as a flow's callback URL would be. */
export async function startCallbackReceiver(): Promise<CallbackReceiver> {
  const received: ReceivedCallback[] = [];
  const answers: { status: number; headers?: Record<string, string> }[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : (value ?? '')]));
      received.push({ method: request.method ?? '', path: request.url ?? '', headers, body: Buffer.concat(chunks).toString('utf8') });
      const answer = answers.shift() ?? { status: 200 };
      response.writeHead(answer.status, answer.headers ?? {});
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    received,
    answerNext: (answer) => answers.push(answer),
    async waitFor(count, timeoutInMs = 60_000) {
      const until = Date.now() + timeoutInMs;
      while (received.length < count) {
        if (Date.now() > until) throw new Error(`the receiver got ${received.length} of ${count} callbacks`);
        await sleep(100);
      }
      return received.slice(0, count);
    },
    reset() {
      received.length = 0;
      answers.length = 0;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
