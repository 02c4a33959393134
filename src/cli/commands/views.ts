/** The API objects as the CLI reads them (a subset of src/protocol/api.ts, as plain types). */

/** A resolved layer of a revision. */
export interface LayerView {
  component: string;
  version: string;
  blob: string;
  size: number;
  createdAt: string;
}

/** A configuration revision. */
export interface ConfigurationView {
  name: string;
  revision: number;
  id: string;
  layers: LayerView[];
  updatedAt: string;
  updatedBy: string;
  note?: string;
}

/** A component version. */
export interface VersionView {
  component: string;
  version: string;
  blob: string;
  size: number;
  createdAt: string;
  createdBy: string;
}

/** A token as listed. */
export interface TokenView {
  id: string;
  kind: string;
  role: string;
  name: string;
  createdAt: string;
  createdBy: string;
  revokedAt?: string;
  expiresAt?: string;
  token?: string;
}
