/**
 * The agent's own routes, authenticated by its signature: its desired state (the ground truth
 * it re-reads every poll), its status reports, and the WebSocket channel.
 */
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { DesiredStateSchema, StatusReportSchema, type StatusReport } from '../../protocol/agent.ts';
import { StrataError } from '../../core/errors.ts';
import { assertName } from '../../core/registry.ts';
import type { AgentPrincipal } from '../agent-auth.ts';
import { desiredFromStore } from '../agents/desired.ts';
import { recordStatus } from '../agents/status.ts';
import type { App, RouteContext } from '../build-app.ts';

const AGENT_SECURITY = [{ agent: [] }];

/** The agent of an agent route (the access hook always sets it). */
export function agentOf(request: FastifyRequest): AgentPrincipal {
  if (!request.agent) throw new StrataError('UNAUTHENTICATED', 'this route needs an agent signature');
  return request.agent;
}

/** Registers GET /v1/agent/desired, POST /v1/agent/status and GET /v1/agent/channel. */
export function registerAgentStateRoutes(app: App, { store, hub }: RouteContext): void {
  app.get('/v1/agent/desired', {
    config: { access: 'agent' },
    schema: { summary: "The calling agent's desired state: its tracked and assigned configurations", security: AGENT_SECURITY, response: { 200: DesiredStateSchema } },
  }, async (request) => desiredFromStore(store, agentOf(request).record, hub.lastSeq));

  app.post('/v1/agent/status', {
    config: { access: 'agent' },
    schema: { summary: 'Report the status of the calling agent’s configurations', security: AGENT_SECURITY, body: StatusReportSchema, response: { 204: z.null() } },
  }, async (request, reply) => {
    const report = request.body as StatusReport;
    // As at enrollment: what an agent tracks must be configuration names.
    for (const name of report.tracks ?? []) assertName('configuration', name);
    const { record, selectionChanged } = await recordStatus(store, agentOf(request).name, report);
    if (selectionChanged) hub.agentChanged(record);
    return reply.code(204).send();
  });

  app.get('/v1/agent/channel', {
    websocket: true,
    config: { access: 'agent' },
    schema: { summary: 'The agent channel (WebSocket): desired states pushed, status and heartbeats', security: AGENT_SECURITY },
  }, (socket: WebSocket, request: FastifyRequest) => {
    hub.attach(socket, agentOf(request).record);
  });
}
