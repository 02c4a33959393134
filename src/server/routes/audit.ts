/** The audit log: who did what, when, and how it ended. */
import { z } from 'zod';
import { AuditEntrySchema } from '../../protocol/api.ts';
import type { App, RouteContext } from '../build-app.ts';

const AuditQuery = z.object({
  afterSeq: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
});

/** Registers GET /v1/audit. */
export function registerAuditRoutes(app: App, { store }: RouteContext): void {
  app.get('/v1/audit', {
    config: { access: 'admin' },
    schema: {
      summary: 'Audit log entries, oldest first: the newest `limit` ones, or those after `afterSeq`',
      querystring: AuditQuery, response: { 200: z.object({ entries: z.array(AuditEntrySchema) }) },
    },
  }, async (request) => {
    const query = request.query as z.infer<typeof AuditQuery>;
    const entries = query.afterSeq === undefined
      ? await store.listAudit({ limit: query.limit, newest: true })
      : await store.listAudit({ afterSeq: query.afterSeq, limit: query.limit });
    return { entries };
  });
}
