/**
 * POST /v1/agents/enroll: an agent trades a join token for an identity (its name and Ed25519 key).
 * The route is public to the role check, but the join token is checked before the body is read.
 */
import type { FastifyRequest } from 'fastify';
import { EnrollRequestSchema, EnrollResponseSchema, type EnrollRequest } from '../../protocol/agent.ts';
import { assertName } from '../../core/registry.ts';
import { StrataError } from '../../core/errors.ts';
import type { TokenRecord } from '../../store/contract.ts';
import { authenticateJoinToken, parseAgentPublicKey } from '../agent-auth.ts';
import { enrollAgent } from '../agents/enroll.ts';
import type { App, RouteContext } from '../build-app.ts';

/** Registers POST /v1/agents/enroll. */
export function registerAgentEnrollRoute(app: App, { store, registry, hub, throttle, caFingerprint }: RouteContext): void {
  const joinTokens = new WeakMap<FastifyRequest, TokenRecord>();

  app.post('/v1/agents/enroll', {
    config: { access: 'public' },
    // The join token is checked here, before the body is read, and failures count like any other.
    onRequest: async (request) => {
      const authorization = request.headers.authorization;
      const token = await throttle.guard(store, request.ip, authorization, { target: '/v1/agents/enroll' }, () => authenticateJoinToken(store, authorization, caFingerprint));
      joinTokens.set(request, token);
    },
    schema: {
      summary: 'Enroll an agent with a join token (Authorization: Bearer SJ1.…): registers its Ed25519 public key',
      description: 'Enrolling again with the same key refreshes labels and tracks; another key is refused while the agent is not revoked.',
      security: [{ bearer: [] }], body: EnrollRequestSchema, response: { 200: EnrollResponseSchema, 201: EnrollResponseSchema },
    },
  }, async (request, reply) => {
    const token = joinTokens.get(request);
    if (!token) throw new StrataError('UNAUTHENTICATED', 'missing join token');
    const body = request.body as EnrollRequest;
    const actor = `join-token:${token.id}(${token.name})`;
    const result = await registry.audited(actor, 'agent.enroll', body.name, { joinToken: token.id, labels: body.labels, tracks: body.tracks }, async () => {
      assertName('agent', body.name);
      for (const name of body.tracks) assertName('configuration', name);
      parseAgentPublicKey(body.publicKey);
      return enrollAgent(store, body, token.id);
    });
    hub.agentChanged(result.record);
    request.log.info({ agent: body.name, created: result.created, joinToken: token.id }, 'agent enrolled');
    return reply.code(result.created ? 201 : 200).send({ name: result.record.name, enrolledAt: result.record.enrolledAt });
  });
}
