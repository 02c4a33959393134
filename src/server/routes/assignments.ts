/** Assignments: a configuration goes to every agent whose labels match a selector. */
import { z } from 'zod';
import { Name } from '../../protocol/names.ts';
import { canonicalSelector } from '../../protocol/selector.ts';
import { StrataError } from '../../core/errors.ts';
import { principalOf, type App, type RouteContext } from '../build-app.ts';

const AssignmentBody = z.object({ configuration: Name, selector: z.string().max(4096) });
const AssignmentSchema = z.object({ configuration: z.string(), selector: z.string(), createdAt: z.string(), createdBy: z.string() });

/** The canonical text of a selector, or INVALID_SELECTOR with the parser's message. */
function selectorText(text: string): string {
  try {
    return canonicalSelector(text);
  } catch (error) {
    throw new StrataError('INVALID_SELECTOR', (error as Error).message, { details: { selector: text } });
  }
}

/** Registers GET, PUT and DELETE /v1/assignments. */
export function registerAssignmentRoutes(app: App, { store, registry, hub }: RouteContext): void {
  app.get('/v1/assignments', {
    config: { access: 'viewer' },
    schema: { summary: 'Every assignment of a configuration to a label selector', response: { 200: z.object({ assignments: z.array(AssignmentSchema) }) } },
  }, async () => ({ assignments: await store.listAssignments() }));

  app.put('/v1/assignments', {
    config: { access: 'deployer' },
    schema: {
      summary: 'Assign a configuration to the agents a selector picks (idempotent)',
      description: 'The selector is stored in its canonical spelling; matching agents get the configuration pushed at once.',
      body: AssignmentBody, response: { 200: AssignmentSchema },
    },
  }, async (request) => {
    const body = request.body as z.infer<typeof AssignmentBody>;
    const selector = selectorText(body.selector);
    const actor = principalOf(request).actor;
    const assignment = await registry.audited(actor, 'assignment.put', body.configuration, { selector }, async () => {
      await registry.configuration(body.configuration);
      return store.putAssignment({ configuration: body.configuration, selector, actor });
    });
    await hub.assignmentsChanged();
    return assignment;
  });

  app.delete('/v1/assignments', {
    config: { access: 'deployer' },
    schema: { summary: 'Remove an assignment; its agents stop tracking the configuration unless something else assigns it', body: AssignmentBody, response: { 204: z.null() } },
  }, async (request, reply) => {
    const body = request.body as z.infer<typeof AssignmentBody>;
    const selector = selectorText(body.selector);
    await registry.audited(principalOf(request).actor, 'assignment.delete', body.configuration, { selector }, async () => {
      if (!(await store.deleteAssignment(body.configuration, selector))) {
        throw new StrataError('ASSIGNMENT_NOT_FOUND', `configuration ${JSON.stringify(body.configuration)} is not assigned to ${JSON.stringify(selector)}`, { details: { configuration: body.configuration, selector } });
      }
    });
    await hub.assignmentsChanged();
    return reply.code(204).send();
  });
}
