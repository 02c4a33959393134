/** `ping`: proves the agent is there and answering orders, and which version it runs. */
import { STRATA_VERSION } from '../../lib/version.ts';
import { ORDER_CODES } from '../../protocol/orders.ts';
import type { OrderContext, OrderOutcome } from './types.ts';

/** Answers a ping with the agent's version and name. */
export async function pingOrder(context: OrderContext): Promise<OrderOutcome> {
  return { ok: true, code: ORDER_CODES.OK, message: 'pong', content: { agentVersion: STRATA_VERSION, name: context.name } };
}
