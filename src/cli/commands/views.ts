/** The API objects as the CLI reads them: the protocol's own schemas, so the two cannot drift. */
import type { z } from 'zod';
import type { AuditEntrySchema, ConfigurationSchema, CreatedTokenSchema, ResolvedLayerSchema, TokenSchema, VersionSchema } from '../../protocol/api.ts';

/** A resolved layer of a revision. */
export type LayerView = z.infer<typeof ResolvedLayerSchema>;

/** A configuration revision. */
export type ConfigurationView = z.infer<typeof ConfigurationSchema>;

/** A component version. */
export type VersionView = z.infer<typeof VersionSchema>;

/** A token as listed, with its text when just created. */
export type TokenView = z.infer<typeof TokenSchema> & Partial<Pick<z.infer<typeof CreatedTokenSchema>, 'token'>>;

/** An audit log entry. */
export type AuditView = z.infer<typeof AuditEntrySchema>;
