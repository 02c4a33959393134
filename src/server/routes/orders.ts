/** Fleet orders: send one to the agents a target picks (streamed answer), list and show past ones. */
import { PassThrough } from 'node:stream';
import { z } from 'zod';
import { StrataError, isStrataError } from '../../core/errors.ts';
import { OrderRequestSchema, OrderViewSchema, type OrderRequest } from '../../protocol/order-api.ts';
import { prepareOrder, runOrder } from '../orders/run-order.ts';
import { principalOf, type App, type RouteContext } from '../build-app.ts';

const OrderParams = z.object({ id: z.string().max(64) });
const OrderListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(10_000).default(50),
  before: z.string().max(64).optional(),
});

/** Registers POST /v1/orders, GET /v1/orders and GET /v1/orders/{id}. */
export function registerOrderRoutes(app: App, { store, hub, logger, metrics }: RouteContext): void {
  app.post('/v1/orders', {
    config: { access: 'deployer' },
    schema: {
      summary: 'Send an order to the agents a target picks; the answer streams as NDJSON',
      description: 'Answers 200 with `application/x-ndjson`: `{"type":"order","id","verb","hosts"}` first, then `progress` and `result` lines as agents answer, and `{"type":"done","summary"}` last. '
        + 'Agents without a channel get `OFFLINE` at once; hosts without a result by `timeoutMs` get `TIMEOUT`. Closing the request cancels hosts still outstanding. '
        + 'A refused order (no target, unknown group or agent, bad selector) answers a JSON error before anything runs.',
      body: OrderRequestSchema,
    },
  }, async (request, reply) => {
    const body = request.body as OrderRequest;
    const actor = principalOf(request).actor;
    let order;
    try {
      order = await prepareOrder(store, actor, body);
    } catch (error) {
      const code = isStrataError(error) ? error.code : 'INTERNAL';
      await store.appendAudit({ actor, action: `order.${body.args.verb}`, target: 'order', result: code, details: { args: body.args, target: body.target } });
      throw error;
    }
    const out = new PassThrough();
    // Writes after the client left are skipped; the error must not go unhandled either way.
    out.on('error', () => {});
    const gone = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) gone.abort();
    });
    metrics.trackOrder(body.args.verb, order.id, runOrder({ store, channels: hub, log: logger }, order, out, gone.signal));
    return reply.header('content-type', 'application/x-ndjson; charset=utf-8').header('cache-control', 'no-store').send(out);
  });

  app.get('/v1/orders', {
    config: { access: 'viewer' },
    schema: { summary: 'Past orders, newest first, without per-host results', querystring: OrderListQuery, response: { 200: z.object({ orders: z.array(OrderViewSchema) }) } },
  }, async (request) => {
    const query = request.query as z.infer<typeof OrderListQuery>;
    return { orders: await store.listOrders({ limit: query.limit, ...(query.before === undefined ? {} : { before: query.before }) }) };
  });

  app.get('/v1/orders/:id', {
    config: { access: 'viewer' },
    schema: { summary: 'One order with every host result', params: OrderParams, response: { 200: OrderViewSchema } },
  }, async (request) => {
    const { id } = request.params as z.infer<typeof OrderParams>;
    const order = await store.getOrder(id);
    if (!order) throw new StrataError('ORDER_NOT_FOUND', `order ${JSON.stringify(id)} not found`, { details: { id } });
    return order;
  });
}
