/** API tokens and agent join tokens: created (shown once), listed (never the secret), revoked. */
import { z } from 'zod';
import { CreatedTokenSchema, CreateJoinTokenBody, CreateTokenBody, TokenSchema } from '../../protocol/api.ts';
import { generateApiToken, generateJoinToken } from '../../core/tokens.ts';
import { StrataError } from '../../core/errors.ts';
import type { TokenRecord } from '../../store/contract.ts';
import { principalOf, type App, type RouteContext } from '../build-app.ts';

const TokenParams = z.object({ id: z.string().regex(/^[0-9a-f]{12}$/, 'must be a 12-digit hex token id') });

/** A token record without its secret hash, as the API lists it. */
function publicToken(record: TokenRecord): z.infer<typeof TokenSchema> {
  const { secretHash: _secretHash, ...rest } = record;
  return rest;
}

/** Registers /v1/tokens and /v1/join-tokens. */
export function registerTokenRoutes(app: App, { store, registry, caFingerprint }: RouteContext): void {
  app.post('/v1/tokens', {
    config: { access: 'admin' },
    schema: { summary: 'Create an API token; its text is returned once', body: CreateTokenBody, response: { 201: CreatedTokenSchema } },
  }, async (request, reply) => {
    const body = request.body as z.infer<typeof CreateTokenBody>;
    const actor = principalOf(request).actor;
    const created = await registry.audited(actor, 'token.create', body.name, { role: body.role }, async () => {
      const generated = generateApiToken();
      const record: TokenRecord = { id: generated.id, kind: 'api', role: body.role, name: body.name, secretHash: generated.secretHash, createdAt: new Date().toISOString(), createdBy: actor };
      await store.createToken(record);
      return { ...publicToken(record), token: generated.text };
    });
    return reply.code(201).send(created);
  });

  app.post('/v1/join-tokens', {
    config: { access: 'admin' },
    schema: { summary: 'Create a join token agents enroll with; it embeds the CA fingerprint', body: CreateJoinTokenBody, response: { 201: CreatedTokenSchema } },
  }, async (request, reply) => {
    const body = request.body as z.infer<typeof CreateJoinTokenBody>;
    if (!caFingerprint) throw new StrataError('BAD_REQUEST', 'join tokens need TLS: this server runs plain HTTP');
    const actor = principalOf(request).actor;
    const created = await registry.audited(actor, 'join-token.create', body.name, {}, async () => {
      const generated = generateJoinToken(caFingerprint);
      const now = new Date();
      const record: TokenRecord = {
        id: generated.id, kind: 'join', role: 'agent', name: body.name, secretHash: generated.secretHash, createdAt: now.toISOString(), createdBy: actor,
        ...(body.ttlMs ? { expiresAt: new Date(now.getTime() + body.ttlMs).toISOString() } : {}),
      };
      await store.createToken(record);
      return { ...publicToken(record), token: generated.text };
    });
    return reply.code(201).send(created);
  });

  app.get('/v1/tokens', {
    config: { access: 'admin' },
    schema: { summary: 'List tokens (never their secrets)', response: { 200: z.object({ tokens: z.array(TokenSchema) }) } },
  }, async () => ({ tokens: (await store.listTokens()).map(publicToken) }));

  app.delete('/v1/tokens/:id', {
    config: { access: 'admin' },
    schema: { summary: 'Revoke a token; it is refused at once', params: TokenParams, response: { 200: TokenSchema } },
  }, async (request) => {
    const { id } = request.params as z.infer<typeof TokenParams>;
    const principal = principalOf(request);
    return registry.audited(principal.actor, 'token.revoke', id, {}, async () => publicToken(await store.revokeToken(id, new Date().toISOString())));
  });
}
