/**
 * Wire shapes of the HTTP API under /v1: request bodies and the objects responses carry.
 * The server validates with them and documents them in its OpenAPI document; the CLI and the
 * dashboard read the same field names. Field names are stable: adding is fine, renaming is not.
 */
import { z } from 'zod';
import { LayerRefSchema, Name, Sha256 } from './names.ts';

/** An ISO 8601 UTC time. */
const Time = z.string();

/** The error body every failing request returns. */
export const ErrorBodySchema = z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() });

/** A stored blob. */
export const BlobSchema = z.object({ sha256: Sha256, size: z.number().int(), createdAt: Time });

/** What an upload returns: the blob, and what the archive inspection found. */
export const UploadResultSchema = BlobSchema.extend({
  archive: z.object({ format: z.enum(['tar.gz', 'tar', 'zip']), entries: z.number().int(), unpackedBytes: z.number().int() }),
});

/** A version of a component. */
export const VersionSchema = z.object({ component: z.string(), version: z.string(), blob: Sha256, size: z.number().int(), createdAt: Time, createdBy: z.string() });

/** A component with its newest version. */
export const ComponentSummarySchema = z.object({ name: z.string(), versionCount: z.number().int(), latest: VersionSchema });

/** A layer as a revision resolved it. */
export const ResolvedLayerSchema = z.object({ component: z.string(), version: z.string(), blob: Sha256, size: z.number().int(), createdAt: Time });

/** One revision of a configuration. */
export const ConfigurationSchema = z.object({
  name: z.string(),
  revision: z.number().int(),
  seq: z.number().int(),
  id: Sha256,
  layers: z.array(ResolvedLayerSchema),
  settings: z.record(z.string(), z.unknown()).optional(),
  updatedAt: Time,
  updatedBy: z.string(),
  note: z.string().optional(),
});

/** Body of PUT /v1/configurations/{name}: addconf. */
export const PutConfigurationBody = z.object({
  layers: z.array(LayerRefSchema).min(1).max(256),
  settings: z.record(z.string(), z.unknown()).optional(),
  force: z.boolean().optional(),
  expectedRevision: z.number().int().min(0).optional(),
});

/** Body of PATCH /v1/configurations/{name}/layers/{component}: changeconf (version) or bumpconf (latest). */
export const ChangeLayerBody = z.union([z.object({ version: Name }), z.object({ latest: z.literal(true) })]);

/** What changeconf and bumpconf return. */
export const ChangeLayerResultSchema = z.object({ changed: z.boolean(), configuration: ConfigurationSchema });

/** Body of POST /v1/configurations/{name}/rollback. */
export const RollbackBody = z.object({ to: z.number().int().min(1).optional() });

/** Body of POST /v1/components/{name}/versions: addver. */
export const AddVersionBody = z.object({ version: Name, blob: Sha256 });

/** Token roles an operator can hold. */
export const RoleSchema = z.enum(['viewer', 'deployer', 'admin']);

/** A token as listed: never its secret. */
export const TokenSchema = z.object({
  id: z.string(),
  kind: z.enum(['api', 'join']),
  role: z.string(),
  name: z.string(),
  createdAt: Time,
  createdBy: z.string(),
  revokedAt: z.string().optional(),
  expiresAt: z.string().optional(),
});

/** Body of POST /v1/tokens. */
export const CreateTokenBody = z.object({ role: RoleSchema, name: z.string().min(1).max(128).regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters') });

/** Longest lifetime a join token may be given: ten years. */
export const MAX_JOIN_TOKEN_TTL_MS = 10 * 365 * 24 * 3600 * 1000;

/** Body of POST /v1/join-tokens; `ttlMs` 0 means no expiry. */
export const CreateJoinTokenBody = z.object({ name: z.string().min(1).max(128).regex(/^[^\u0000-\u001f\u007f]*$/), ttlMs: z.number().int().min(0).max(MAX_JOIN_TOKEN_TTL_MS).optional() });

/** A token just created: the only time its text is shown. */
export const CreatedTokenSchema = TokenSchema.extend({ token: z.string() });

/** An audit log entry. */
export const AuditEntrySchema = z.object({
  seq: z.number().int(),
  at: Time,
  actor: z.string(),
  action: z.string(),
  target: z.string(),
  result: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** The caller, as the server sees it. */
export const WhoAmISchema = z.object({ tokenId: z.string(), name: z.string(), role: RoleSchema });

/** GET /v1/health. */
export const HealthSchema = z.object({
  ok: z.boolean(), version: z.string(), store: z.string(),
  /** This server process's random id (several replicas may share one store). */
  replica: z.string().optional(),
  /** The other live replicas this one hears through the cluster bus. */
  peers: z.array(z.string()).optional(),
});
