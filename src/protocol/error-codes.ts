/**
 * The one catalog of Strata's error codes: stable code → HTTP status → default message.
 * The server renders every error from here, the CLI recognises them, and `docs/errors.md`
 * must list exactly these codes (a test checks it).
 */
export const ERROR_CATALOG = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed or fails validation.' },
  INVALID_NAME: { status: 400, message: 'A component, version or configuration name is invalid.' },
  INVALID_LAYERS: { status: 400, message: 'The layer list is empty, malformed, or names a component twice.' },
  INVALID_HASH: { status: 400, message: 'A hash is not 64 lower-case hex digits.' },
  INVALID_SELECTOR: { status: 400, message: 'A label selector is malformed; write it like role=web,region!=eu.' },
  NO_TARGET: { status: 400, message: 'An order needs exactly one target (hosts, group, selector or all) that picks at least one agent.' },
  INVALID_ARCHIVE: { status: 422, message: 'The upload is not a gzip-compressed tar, a plain tar or a zip archive, is truncated, or holds more data than its entries account for.' },
  UNSAFE_ARCHIVE_ENTRY: { status: 422, message: 'The archive has an entry that could escape or damage the release tree.' },
  HASH_MISMATCH: { status: 422, message: 'The uploaded bytes do not match the expected sha256.' },
  INVALID_IMAGE: { status: 422, message: 'The input is not a docker save or OCI image archive, or its manifest, config or layers do not fit together.' },
  UNAUTHENTICATED: { status: 401, message: 'A valid API token is required.' },
  FORBIDDEN: { status: 403, message: "The token's role does not allow this action." },
  TOO_MANY_AUTH_FAILURES: { status: 429, message: 'Too many failed authentications from this address; wait and retry.' },
  NOT_FOUND: { status: 404, message: 'No such route.' },
  BLOB_NOT_FOUND: { status: 404, message: 'No blob with that sha256 has been uploaded.' },
  COMPONENT_NOT_FOUND: { status: 404, message: 'No such component.' },
  VERSION_NOT_FOUND: { status: 404, message: 'No such version of the component.' },
  CONFIGURATION_NOT_FOUND: { status: 404, message: 'No such configuration.' },
  REVISION_NOT_FOUND: { status: 404, message: 'The configuration has no such revision.' },
  TOKEN_NOT_FOUND: { status: 404, message: 'No such token.' },
  AGENT_NOT_FOUND: { status: 404, message: 'No such agent.' },
  ASSIGNMENT_NOT_FOUND: { status: 404, message: 'No assignment of that configuration to that selector.' },
  GROUP_NOT_FOUND: { status: 404, message: 'No such host group.' },
  ORDER_NOT_FOUND: { status: 404, message: 'No such order (it may be older than the orders kept).' },
  VERSION_EXISTS: { status: 409, message: 'That version of the component already exists; versions are immutable.' },
  CONFIGURATION_EXISTS: { status: 409, message: 'The configuration already exists; pass force to replace it.' },
  REVISION_CONFLICT: { status: 409, message: 'The configuration changed since it was read; re-read it and retry.' },
  AGENT_EXISTS: { status: 409, message: 'An agent with that name is already enrolled; revoke it first.' },
  IN_USE: { status: 409, message: 'Still used by a configuration; change or delete the configuration first.' },
  CONFIRMATION_REQUIRED: { status: 409, message: 'This removal must be confirmed with force.' },
  NOTHING_TO_ROLL_BACK: { status: 409, message: 'The configuration has no earlier revision to roll back to.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is larger than the configured limit.' },
  IMAGE_TOO_LARGE: { status: 413, message: 'An image import went over a limit: archive bytes, layers, entries or manifest size.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body has the wrong content type.' },
  INSUFFICIENT_STORAGE: { status: 507, message: 'The server ran out of disk space; nothing was stored.' },
  STORE_UNAVAILABLE: { status: 503, message: 'The store did not answer (NATS is electing a leader or reconnecting); a write may or may not have happened: read back, then retry.' },
  BLOB_CORRUPT: { status: 500, message: 'A stored blob no longer matches its sha256; it was not served.' },
  INTERNAL: { status: 500, message: 'An internal error occurred; the server log has details.' },
} as const satisfies Record<string, { status: number; message: string }>;

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_CATALOG;

/** True when `value` is a code in the catalog. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOG, value);
}

/** The body of every error response. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}
