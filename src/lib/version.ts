/** Strata's version, from package.json, for health checks and user agents. */
import { readFileSync } from 'node:fs';

/** The version of this Strata build. */
export const STRATA_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
