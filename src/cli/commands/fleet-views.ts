/** The fleet objects as the CLI reads them (the server's src/server/agents/views.ts, as plain types), and their one-line renderings. */

/** One configuration of one agent. */
export interface AgentConfigView {
  configuration: string;
  revision: number | null;
  id: string | null;
  phase: string;
  desiredRevision?: number;
  currentRevision?: number;
  upToDate: boolean;
  error?: { code: string; message: string };
  hookExitCode?: number | null;
  /** The configuration's service, when it has one (src/protocol/agent.ts ServiceStatusSchema). */
  service?: { state: string; pid?: number; restarts: number; since: string; health?: string; lastExit?: { code: number | null; signal: string | null } };
  at?: string;
}

/** An agent as listed. */
export interface AgentView {
  name: string;
  labels: Record<string, string>;
  online: boolean;
  lastSeen: string | null;
  enrolledAt: string;
  revokedAt?: string;
  /** The server replica holding its channel, while online. */
  replica?: string;
  configurations: AgentConfigView[];
}

/** An agent as shown. */
export interface AgentDetailView extends AgentView {
  tracks: string[];
  assigned: string[];
  inventory?: Record<string, unknown>;
  keyFingerprint?: string;
  configurations: (AgentConfigView & { hookOutput?: string })[];
}

/** A configuration's rollout status. */
export interface ConfigurationStatusView {
  configuration: string;
  revision: number;
  id: string;
  agents: number;
  upToDate: number;
  failed: number;
  online: number;
  rows: (Omit<AgentConfigView, 'configuration' | 'revision' | 'id'> & { agent: string; online: boolean })[];
}

/** An assignment. */
export interface AssignmentView {
  configuration: string;
  selector: string;
  createdAt: string;
  createdBy: string;
}

/** `role=web,region=us`, or `-` without labels. */
export function labelsText(labels: Record<string, string>): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

/** `running pid 4242, 2 restarts`, or `-` without a service. */
export function serviceText(service: AgentConfigView['service']): string {
  if (!service) return '-';
  const pid = service.pid === undefined ? '' : ` pid ${service.pid}`;
  return `${service.state}${pid}, ${service.restarts} restart${service.restarts === 1 ? '' : 's'}`;
}

/** `site@3 deployed`; `site@3 failed (want 4)` when behind; `site missing` when the configuration does not exist. */
export function configText(view: AgentConfigView): string {
  if (view.revision === null) return `${view.configuration} missing`;
  const at = view.currentRevision === undefined ? '' : `@${view.currentRevision}`;
  const behind = !view.upToDate && view.currentRevision !== view.revision ? ` (want ${view.revision})` : '';
  return `${view.configuration}${at} ${view.phase}${behind}`;
}

/** `yes`, `no` or `revoked`. */
export function onlineText(agent: { online: boolean; revokedAt?: string }): string {
  return agent.revokedAt ? 'revoked' : agent.online ? 'yes' : 'no';
}
