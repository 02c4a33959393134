/** A fake agent for order tests: opens the real channel with its own key and answers `order` messages as the test says. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { CHANNEL_VERSION, type ChannelMessage } from '../../src/protocol/agent.ts';
import type { AgentOrder, HostResult } from '../../src/protocol/orders.ts';
import type { FakeAgent } from './fake-agent.ts';

const PATH = '/v1/agent/channel';

/** How the agent answers one order: send progress, then return the result (or undefined to stay silent). */
export type Behaviour = (order: AgentOrder, progress: (content: unknown) => void) => Promise<HostResult | undefined> | HostResult | undefined;

/** A connected order-answering agent. */
export interface OrderAgent {
  name: string;
  /** Every message received, in order. */
  received: ChannelMessage[];
  /** Waits until a message of `type` has been received (resolves with the first one). */
  waitFor(type: ChannelMessage['type'], timeoutMs?: number): Promise<ChannelMessage>;
  /** The close code once the channel closed (by either side). */
  closeCode(): number | undefined;
  close(): Promise<void>;
}

/** Answers every order at once with OK and `{ echo: args }`. */
export const answerOk = (order: AgentOrder): HostResult => ({ ok: true, code: 'OK', message: `did ${order.args.verb}`, content: { echo: order.args }, durationMs: 1 });

/** Waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Opens the channel of an enrolled agent at `base` (ws:// or wss://host:port, trusting `ca`) and answers orders with `behaviour`. */
export async function orderAgent(base: string, agent: FakeAgent, behaviour: Behaviour = answerOk, options: { ca?: string } = {}): Promise<OrderAgent> {
  const socket = new WebSocket(base + PATH, { headers: { authorization: agent.authorization('GET', PATH) }, ...(options.ca ? { ca: options.ca } : {}) });
  const received: ChannelMessage[] = [];
  const send = (message: Record<string, unknown>): void => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ v: CHANNEL_VERSION, id: Math.random().toString(36).slice(2), ...message }));
  };
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as ChannelMessage;
    received.push(message);
    if (message.type !== 'order') return;
    const order = message.order;
    void Promise.resolve(behaviour(order, (content) => send({ type: 'order-progress', orderId: order.id, content }))).then((result) => {
      if (result) send({ type: 'order-result', orderId: order.id, result });
    });
  });
  let closeCode: number | undefined;
  socket.on('close', (code) => (closeCode = code));
  await once(socket, 'open');
  return {
    name: agent.name, received,
    closeCode: () => closeCode,
    async waitFor(type, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.find((m) => m.type === type);
        if (found) return found;
        assert.ok(Date.now() < deadline, `${agent.name}: no ${type} within ${timeoutMs}ms; got ${received.map((m) => m.type).join(',')}`);
        await sleep(10);
      }
    },
    async close() {
      if (socket.readyState === socket.CLOSED) return;
      socket.close();
      await once(socket, 'close');
    },
  };
}
