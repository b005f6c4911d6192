import type { LookupAddress } from 'node:dns';

import { addressAllowed, UndiciCallbackSender } from '../../src/adapters/callback-sender';
import type { Resolver } from '../../src/adapters/callback-sender';
import { CallbackRefusedError } from '../../src/domain/callbacks';
import type { CallbackReceiver } from '../helpers/callback-receiver';
import { startCallbackReceiver } from '../helpers/callback-receiver';

// The one door for requests to URLs callers chose: only allowed hosts, only public addresses, and
// the connection goes to the very address that was checked.

describe('addressAllowed', () => {
  it.each([
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '127.0.0.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '64:ff9b::a00:1',
    '2002:7f00:1::1',
  ])('refuses %s', (address) => {
    expect(addressAllowed(address, false)).toBe(false);
  });

  it.each(['20.42.65.1', '8.8.8.8', '2603:1030:20e::1', '2606:4700::1111'])('allows the public address %s', (address) => {
    expect(addressAllowed(address, false)).toBe(true);
  });

  it('allows loopback, and only loopback, when local development asks for it', () => {
    expect(addressAllowed('127.0.0.1', true)).toBe(true);
    expect(addressAllowed('::1', true)).toBe(true);
    expect(addressAllowed('10.0.0.1', true)).toBe(false);
    expect(addressAllowed('169.254.169.254', true)).toBe(false);
  });
});

describe('UndiciCallbackSender', () => {
  let receiver: CallbackReceiver;
  const senders: UndiciCallbackSender[] = [];

  beforeAll(async () => {
    receiver = await startCallbackReceiver();
  });

  afterAll(async () => {
    await Promise.all(senders.map((sender) => sender.close()));
    await receiver.close();
  });

  beforeEach(() => receiver.reset());

  /** A sender whose resolver says what a (possibly hostile) DNS would, and counts what it was asked. */
  function senderWith(answers: Record<string, readonly LookupAddress[]>, options: { allowLoopback: boolean; allowedHosts?: string[] }) {
    const asked: string[] = [];
    const resolve: Resolver = (hostname) => {
      asked.push(hostname);
      return Promise.resolve(answers[hostname] ?? []);
    };
    const sender = new UndiciCallbackSender({ policy: { allowedHosts: options.allowedHosts ?? ['*.logic.azure.com'], allowLoopback: options.allowLoopback }, resolve, timeoutInMs: 5_000 });
    senders.push(sender);
    return { sender, asked };
  }

  const localhost = { localhost: [{ address: '127.0.0.1', family: 4 }] };

  it('posts to a loopback receiver when local development allows it, connecting where the lookup said', async () => {
    const { sender, asked } = senderWith(localhost, { allowLoopback: true });
    receiver.answerNext({ status: 202 });

    const reply = await sender.post(`http://localhost:${receiver.port}/hook?sig=abc`, '{"a":1}', { 'content-type': 'application/json', 'webhook-id': 'x' });

    expect(reply).toEqual({ status: 202, retryAfterSeconds: undefined });
    expect(asked).toEqual(['localhost']);
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]).toMatchObject({ path: '/hook?sig=abc', body: '{"a":1}', headers: { 'webhook-id': 'x' } });
  });

  it("reads the receiver's Retry-After", async () => {
    const { sender } = senderWith(localhost, { allowLoopback: true });
    receiver.answerNext({ status: 503, headers: { 'retry-after': '7' } });

    await expect(sender.post(`http://localhost:${receiver.port}/hook`, '{}', {})).resolves.toEqual({ status: 503, retryAfterSeconds: 7 });
  });

  it('refuses a loopback receiver by default, without connecting', async () => {
    const { sender, asked } = senderWith(localhost, { allowLoopback: false });

    await expect(sender.post(`http://localhost:${receiver.port}/hook`, '{}', {})).rejects.toThrow(CallbackRefusedError);
    expect(asked).toEqual([]);
    expect(receiver.received).toEqual([]);
  });

  it('refuses an allowed name that resolves to a private or loopback address (DNS rebinding), without connecting', async () => {
    const { sender } = senderWith(
      {
        'prod-01.westus.logic.azure.com': [{ address: '127.0.0.1', family: 4 }],
        'prod-02.westus.logic.azure.com': [
          { address: '20.42.65.1', family: 4 },
          { address: '10.0.0.7', family: 4 },
        ],
      },
      // Even with loopback allowed for local development: only loopback *names* may reach loopback.
      { allowLoopback: true },
    );

    await expect(sender.post(`https://prod-01.westus.logic.azure.com:${receiver.port}/hook`, '{}', {})).rejects.toThrow(
      'prod-01.westus.logic.azure.com resolves to 127.0.0.1, which callbacks may not reach',
    );
    await expect(sender.post('https://prod-02.westus.logic.azure.com/hook', '{}', {})).rejects.toThrow('resolves to 10.0.0.7');
    expect(receiver.received).toEqual([]);
  });

  it('refuses literal private addresses and hosts off the allow-list before any lookup', async () => {
    const { sender, asked } = senderWith({}, { allowLoopback: true, allowedHosts: ['*.logic.azure.com'] });

    await expect(sender.post('https://10.0.0.1/hook', '{}', {})).rejects.toThrow(CallbackRefusedError);
    await expect(sender.post('https://example.com/hook', '{}', {})).rejects.toThrow(CallbackRefusedError);
    await expect(sender.post('http://[::1]:1/hook', '{}', {})).rejects.not.toThrow(CallbackRefusedError);
    expect(asked).toEqual([]);
  });

  it('does not follow redirects', async () => {
    const { sender } = senderWith(localhost, { allowLoopback: true });
    receiver.answerNext({ status: 307, headers: { location: 'http://169.254.169.254/latest/meta-data' } });

    await expect(sender.post(`http://localhost:${receiver.port}/hook`, '{}', {})).resolves.toMatchObject({ status: 307 });
    expect(receiver.received).toHaveLength(1);
  });
});
