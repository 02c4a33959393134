/**
 * The server's one error handler: every failure leaves as `{ code, message, details }` with the
 * status the catalog gives its code. 4xx are logged at info, 5xx at error with the stack.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ERROR_CATALOG, type ErrorBody } from '../protocol/error-codes.ts';
import { isStrataError, StrataError } from '../core/errors.ts';

/** Maps anything thrown in a request to a StrataError. */
export function toStrataError(error: unknown): StrataError {
  if (isStrataError(error)) return error;
  const fastifyError = error as Partial<FastifyError> & { code?: string };
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issues = error.validation.map((issue) => `${issue.instancePath ? `${issue.instancePath.slice(1).replaceAll('/', '.')}: ` : ''}${issue.message}`);
    return new StrataError('BAD_REQUEST', `invalid ${error.validationContext ?? 'request'}: ${issues.join('; ')}`, { details: { issues: error.validation } });
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new StrataError('PAYLOAD_TOO_LARGE', undefined, { cause: error });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new StrataError('UNSUPPORTED_MEDIA_TYPE', undefined, { cause: error });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new StrataError('BAD_REQUEST', fastifyError.message, { cause: error });
    case 'ENOSPC':
    case 'EDQUOT':
      return new StrataError('INSUFFICIENT_STORAGE', undefined, { cause: error });
  }
  if (error instanceof SyntaxError || fastifyError.statusCode === 400) return new StrataError('BAD_REQUEST', (error as Error).message, { cause: error });
  return new StrataError('INTERNAL', undefined, { cause: error });
}

/** The response body for an error. */
export function errorBody(error: StrataError): ErrorBody {
  return { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
}

/** Installs the error and not-found handlers on an app. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((raw, request, reply) => {
    const error = toStrataError(raw);
    const status = ERROR_CATALOG[error.code].status;
    if (status >= 500) request.log.error({ err: raw, code: error.code }, 'request failed');
    else request.log.info({ code: error.code, message: error.message }, 'request refused');
    // A stream that failed after its headers went out cannot get an error body: cut the response
    // short, so the client sees a broken transfer rather than a complete one.
    if (reply.raw.headersSent) return void reply.raw.destroy(raw instanceof Error ? raw : undefined);
    // The route may have set another content type (a blob download) before it failed.
    return reply.code(status).type('application/json; charset=utf-8').send(errorBody(error));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new StrataError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(404).send(errorBody(error));
  });
}
