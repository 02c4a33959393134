/**
 * Blobs: streaming uploads that are hashed, size-limited and inspected as archives while they
 * arrive (memory stays bounded whatever the size), and reads with HTTP byte ranges.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { UploadResultSchema } from '../../protocol/api.ts';
import { Sha256 } from '../../protocol/names.ts';
import { StrataError } from '../../core/errors.ts';
import { storeUpload } from '../../core/upload.ts';
import type { App, RouteContext } from '../build-app.ts';
import type { AgentPrincipal } from '../agent-auth.ts';
import { desiredFromStore } from '../agents/desired.ts';

const UploadQuery = z.object({ sha256: Sha256.optional() });
const BlobParams = z.object({ sha256: Sha256 });

/** Parses a single `bytes=start-end` range against a size; undefined for none, throws on a bad one. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) throw new StrataError('BAD_REQUEST', `unsupported Range header ${JSON.stringify(header)}: use bytes=START-END`);
  let start: number;
  let end: number;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start > end || start >= size) return { start: -1, end: -1 };
  return { start, end };
}

/** Throws FORBIDDEN unless a configuration the agent tracks references the blob in its current revision. */
async function assertAgentMayRead(store: RouteContext['store'], agent: AgentPrincipal, sha256: string): Promise<void> {
  const desired = await desiredFromStore(store, agent.record);
  if (desired.configurations.some((c) => c.layers.some((layer) => layer.blob === sha256))) return;
  throw new StrataError('FORBIDDEN', `agent ${JSON.stringify(agent.name)} may only read blobs of the configurations it tracks`, { details: { sha256 } });
}

/** Registers POST /v1/blobs and GET/HEAD /v1/blobs/{sha256}. */
export function registerBlobRoutes(app: App, { store, limits }: RouteContext): void {
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  app.post('/v1/blobs', {
    config: { access: 'deployer' },
    schema: {
      summary: 'Upload an archive (tar.gz, tar or zip) as a blob; it is inspected before it is kept',
      description: 'Send the bytes as application/octet-stream. With ?sha256= the upload is refused unless the bytes hash to it. Uploading existing bytes again returns the same blob.',
      querystring: UploadQuery,
      response: { 201: UploadResultSchema },
    },
  }, async (request, reply) => {
    const { sha256 } = request.query as z.infer<typeof UploadQuery>;
    if (!request.headers['content-type']?.startsWith('application/octet-stream')) throw new StrataError('UNSUPPORTED_MEDIA_TYPE', 'upload the archive as application/octet-stream');
    const declared = Number(request.headers['content-length'] ?? NaN);
    if (declared > limits.maxUploadBytes) throw new StrataError('PAYLOAD_TOO_LARGE', `upload of ${declared} bytes is over the limit of ${limits.maxUploadBytes}`, { details: { limit: limits.maxUploadBytes } });
    const { info, summary } = await storeUpload(store, request.body as Readable, limits, sha256);
    request.log.info({ sha256: info.sha256, size: info.size, format: summary.format }, 'blob stored');
    return reply.code(201).send({ ...info, archive: { format: summary.format, entries: summary.entries, unpackedBytes: summary.unpackedBytes } });
  });

  app.get('/v1/blobs/:sha256', {
    config: { access: 'viewer', alsoAgents: true },
    schema: {
      summary: 'Download a blob; supports a single byte range (Range: bytes=START-END)',
      description: 'Operators need viewer; an agent may read the blobs of the current revisions of the configurations it tracks.',
      params: BlobParams, security: [{ bearer: [] }, { agent: [] }],
    },
  }, async (request, reply) => {
    const { sha256 } = request.params as z.infer<typeof BlobParams>;
    // Checked before the blob is looked up, so an agent cannot probe for blobs outside its configurations.
    if (request.agent) await assertAgentMayRead(store, request.agent, sha256);
    const stat = await store.statBlob(sha256);
    if (!stat) throw new StrataError('BLOB_NOT_FOUND', `blob ${sha256} not found`, { details: { sha256 } });
    const range = parseRange(request.headers.range, stat.size);
    reply.header('accept-ranges', 'bytes').header('etag', `"${sha256}"`).type('application/octet-stream');
    if (range && range.start < 0) {
      return reply.code(416).header('content-range', `bytes */${stat.size}`).type('application/json; charset=utf-8').send({ code: 'BAD_REQUEST', message: 'range not satisfiable' });
    }
    const { stream } = await store.getBlob(sha256, range);
    if (range) {
      reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${stat.size}`).header('content-length', range.end - range.start + 1);
    } else {
      reply.header('content-length', stat.size);
    }
    return reply.send(stream);
  });
}
