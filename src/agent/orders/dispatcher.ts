/**
 * Runs the orders the server sends: each one validated, run by its verb's handler with an
 * AbortSignal (cancel, deadline, agent stopping), and answered exactly once — a handler that
 * throws still answers, and an order that cannot be read answers UNSUPPORTED. At most
 * `maxConcurrent` run at once; the rest wait their turn (and their deadline) in order.
 */
import type { HostResult } from '../../protocol/orders.ts';
import { AgentOrderSchema, ORDER_CODES, type AgentOrder } from '../../protocol/orders.ts';
import { execOrder } from './exec.ts';
import { logsOrder } from './logs.ts';
import { pingOrder } from './ping.ts';
import { restartOrder } from './restart.ts';
import { syncOrder } from './sync.ts';
import { abortReason, type OrderContext, type OrderEnvironment, type OrderOutcome } from './types.ts';

/** Where an order's messages go; the channel drops them if its socket closed meanwhile. */
export interface OrderSink {
  progress(orderId: string, content: unknown): void;
  result(orderId: string, result: HostResult): void;
}

/** Orders run at once by default. */
export const MAX_CONCURRENT_ORDERS = 16;
/** An order without a readable deadline gets this long. */
const DEFAULT_DEADLINE_MS = 10 * 60_000;
/** Longest a timer may be set for (setTimeout's limit). */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Entry {
  order: AgentOrder;
  sink: OrderSink;
  controller: AbortController;
  deadline: number;
  timer: NodeJS.Timeout;
  received: number;
  answered: boolean;
  settled: Promise<void>;
  settle: () => void;
}

/** Validates, queues, runs, cancels and answers orders. */
export class OrderDispatcher {
  readonly #env: OrderEnvironment;
  readonly #maxConcurrent: number;
  readonly #entries = new Map<string, Entry>();
  readonly #queue: Entry[] = [];
  #running = 0;
  #stopped = false;

  constructor(env: OrderEnvironment, options: { maxConcurrent?: number } = {}) {
    this.#env = env;
    this.#maxConcurrent = options.maxConcurrent ?? MAX_CONCURRENT_ORDERS;
  }

  /** Takes an order as it came off the wire (not yet validated) and answers it through `sink`. */
  receive(raw: unknown, sink: OrderSink): void {
    const parsed = AgentOrderSchema.safeParse(raw);
    if (!parsed.success) {
      const id = (raw as { id?: unknown } | null)?.id;
      this.#env.log.warn({ orderId: id, issue: parsed.error.issues[0]?.message }, 'unreadable order');
      if (typeof id === 'string' && id.length <= 64) {
        sink.result(id, { ok: false, code: ORDER_CODES.UNSUPPORTED, message: `this agent cannot read the order: ${describeIssue(parsed.error.issues[0])}`, durationMs: 0 });
      }
      return;
    }
    const order = parsed.data;
    // The server may resend an order after a reconnect; the first copy still answers.
    if (this.#entries.has(order.id)) return;
    const received = Date.now();
    const parsedDeadline = Date.parse(order.deadline);
    const deadline = Number.isFinite(parsedDeadline) ? parsedDeadline : received + DEFAULT_DEADLINE_MS;
    const controller = new AbortController();
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const timer = setTimeout(() => controller.abort('deadline'), Math.min(MAX_TIMER_MS, Math.max(0, deadline - received)));
    const entry: Entry = { order, sink, controller, deadline, timer, received, answered: false, settled, settle };
    this.#entries.set(order.id, entry);
    if (this.#stopped) controller.abort('stopping');
    this.#queue.push(entry);
    this.#pump();
  }

  /** Aborts an order (`order-cancel`); unknown or finished ids are ignored. */
  cancel(orderId: string): void {
    this.#entries.get(orderId)?.controller.abort('cancelled');
  }

  /** Aborts every order and waits (up to `waitMs`) until each has answered. */
  async shutdown(waitMs = 10_000): Promise<void> {
    this.#stopped = true;
    const all = [...this.#entries.values()];
    for (const entry of all) entry.controller.abort('stopping');
    this.#pump();
    const timer = new Promise((resolve) => setTimeout(resolve, waitMs).unref());
    await Promise.race([Promise.all(all.map((entry) => entry.settled)), timer]);
  }

  /** Orders received and not yet answered. */
  get pending(): number {
    return this.#entries.size;
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      // A waiting order that was aborted answers at once without taking a slot.
      if (!next.controller.signal.aborted && this.#running >= this.#maxConcurrent) return;
      this.#queue.shift();
      if (next.controller.signal.aborted) {
        this.#answer(next, abortedBeforeStart(next.controller.signal));
        continue;
      }
      this.#running += 1;
      void this.#run(next).finally(() => {
        this.#running -= 1;
        this.#pump();
      });
    }
  }

  async #run(entry: Entry): Promise<void> {
    const { order } = entry;
    const context: OrderContext = {
      ...this.#env, orderId: order.id, signal: entry.controller.signal, deadline: entry.deadline,
      progress: (content) => {
        if (!entry.answered) entry.sink.progress(order.id, content);
      },
    };
    let outcome: OrderOutcome;
    try {
      outcome = await handle(order, context);
    } catch (error) {
      this.#env.log.error({ err: error, orderId: order.id, verb: order.args.verb }, 'order handler failed');
      outcome = { ok: false, code: 'INTERNAL', message: `the agent failed to run the order: ${(error as Error).message}` };
    }
    this.#answer(entry, outcome);
  }

  #answer(entry: Entry, outcome: OrderOutcome): void {
    if (entry.answered) return;
    entry.answered = true;
    clearTimeout(entry.timer);
    this.#entries.delete(entry.order.id);
    const result: HostResult = { ...outcome, durationMs: Date.now() - entry.received };
    this.#env.log.info({ orderId: entry.order.id, verb: entry.order.args.verb, ok: result.ok, code: result.code, durationMs: result.durationMs }, 'order answered');
    try {
      entry.sink.result(entry.order.id, result);
    } finally {
      entry.settle();
    }
  }
}

/** Runs the handler of the order's verb. */
function handle(order: AgentOrder, context: OrderContext): Promise<OrderOutcome> {
  const args = order.args;
  switch (args.verb) {
    case 'ping':
      return pingOrder(context);
    case 'exec':
      return execOrder(args, context);
    case 'sync':
      return syncOrder(args, context);
    case 'logs':
      return logsOrder(args, context);
    case 'restart':
      return restartOrder(args, context);
  }
}

/** The answer of an order aborted while it waited for a slot. */
function abortedBeforeStart(signal: AbortSignal): OrderOutcome {
  const reason = abortReason(signal);
  return { ok: false, code: reason === 'deadline' ? ORDER_CODES.TIMEOUT : 'CANCELLED', message: `the order was ${reason === 'stopping' ? 'dropped: the agent is stopping' : reason === 'deadline' ? 'not started before its deadline' : 'cancelled before it started'}` };
}

/** One validation issue, as a short phrase (`args.verb: …`). */
function describeIssue(issue: { path: PropertyKey[]; message: string } | undefined): string {
  if (!issue) return 'invalid order';
  const where = issue.path.map(String).join('.');
  return where ? `${where}: ${issue.message}` : issue.message;
}
