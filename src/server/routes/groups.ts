/** Host groups: named order targets, a fixed list of agents or a label selector. */
import { z } from 'zod';
import { GroupBodySchema, GroupViewSchema } from '../../protocol/order-api.ts';
import { assertName } from '../../core/registry.ts';
import { StrataError } from '../../core/errors.ts';
import { canonicalSelectorText } from '../orders/targets.ts';
import { principalOf, type App, type RouteContext } from '../build-app.ts';

const GroupParams = z.object({ name: z.string().max(128) });

/** Registers GET /v1/groups, GET, PUT and DELETE /v1/groups/{name}. */
export function registerGroupRoutes(app: App, { store, registry }: RouteContext): void {
  app.get('/v1/groups', {
    config: { access: 'viewer' },
    schema: { summary: 'Every host group, sorted by name', response: { 200: z.object({ groups: z.array(GroupViewSchema) }) } },
  }, async () => ({ groups: await store.listGroups() }));

  app.get('/v1/groups/:name', {
    config: { access: 'viewer' },
    schema: { summary: 'One host group', params: GroupParams, response: { 200: GroupViewSchema } },
  }, async (request) => {
    const { name } = request.params as z.infer<typeof GroupParams>;
    const group = await store.getGroup(name);
    if (!group) throw new StrataError('GROUP_NOT_FOUND', `group ${JSON.stringify(name)} not found`, { details: { name } });
    return group;
  });

  app.put('/v1/groups/:name', {
    config: { access: 'deployer' },
    schema: {
      summary: 'Create or replace a host group: a list of agents, or a label selector',
      description: 'Exactly one of `hosts` and `selector`. A selector is stored in its canonical spelling and evaluated when an order runs.',
      params: GroupParams, body: GroupBodySchema, response: { 200: GroupViewSchema },
    },
  }, async (request) => {
    const { name } = request.params as { name: string };
    const body = request.body as z.infer<typeof GroupBodySchema>;
    return registry.audited(principalOf(request).actor, 'group.put', name, { ...body }, async () => {
      assertName('group', name);
      if ((body.hosts === undefined) === (body.selector === undefined)) throw new StrataError('BAD_REQUEST', 'a group is either hosts or a selector: give exactly one');
      if (body.hosts !== undefined) return store.putGroup({ name, hosts: [...new Set(body.hosts)], actor: principalOf(request).actor });
      return store.putGroup({ name, selector: canonicalSelectorText(body.selector!), actor: principalOf(request).actor });
    });
  });

  app.delete('/v1/groups/:name', {
    config: { access: 'deployer' },
    schema: { summary: 'Remove a host group', params: GroupParams, response: { 204: z.null() } },
  }, async (request, reply) => {
    const { name } = request.params as z.infer<typeof GroupParams>;
    await registry.audited(principalOf(request).actor, 'group.delete', name, {}, async () => {
      if (!(await store.deleteGroup(name))) throw new StrataError('GROUP_NOT_FOUND', `group ${JSON.stringify(name)} not found`, { details: { name } });
    });
    return reply.code(204).send();
  });
}
