/** `restart`: restarts a configuration's service on this agent — graceful stop, then start of the same release. */
import { ORDER_CODES, type OrderArgs } from '../../protocol/orders.ts';
import type { OrderContext, OrderOutcome } from './types.ts';

/** Restarts the service and answers its new state (pid, restart count). */
export async function restartOrder(args: Extract<OrderArgs, { verb: 'restart' }>, context: OrderContext): Promise<OrderOutcome> {
  if (!context.restartService) return { ok: false, code: ORDER_CODES.NO_SERVICE, message: 'this agent supervises no services' };
  try {
    const service = await context.restartService(args.configuration);
    const ok = service.pid !== undefined;
    return { ok, code: ok ? ORDER_CODES.OK : 'RESTART_FAILED', message: ok ? `restarted ${args.configuration} (pid ${service.pid}, ${service.restarts} restart${service.restarts === 1 ? '' : 's'})` : `${args.configuration} did not start again`, content: service };
  } catch (error) {
    return { ok: false, code: (error as { orderCode?: string }).orderCode ?? ORDER_CODES.NO_SERVICE, message: (error as Error).message };
  }
}
