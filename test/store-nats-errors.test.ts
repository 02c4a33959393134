/** How the NATS store names what NATS throws: a full store, an oversized record, a store briefly away. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStrataError } from '../src/core/errors.ts';
import { storageError } from '../src/store/nats/codec.ts';

function named(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

function codeOf(error: unknown): string | undefined {
  const mapped = storageError(error);
  return isStrataError(mapped) ? mapped.code : undefined;
}

describe('NATS store errors', () => {
  it('reports leader elections and reconnects as STORE_UNAVAILABLE (503), not INTERNAL', () => {
    assert.equal(codeOf(named('NoRespondersError', 'no responders: $JS.API.STREAM.INFO.strata-ledger')), 'STORE_UNAVAILABLE');
    assert.equal(codeOf(named('TimeoutError', 'timeout')), 'STORE_UNAVAILABLE');
    assert.equal(codeOf(named('ClosedConnectionError', 'closed connection')), 'STORE_UNAVAILABLE');
    assert.equal(codeOf(new Error('heartbeats missed')), 'STORE_UNAVAILABLE');
    assert.equal(codeOf(Object.assign(new Error('jetstream system temporarily unavailable'), { api_error: { err_code: 10008 } })), 'STORE_UNAVAILABLE');
  });

  it('keeps a full store and an oversized record apart, and passes anything else on unchanged', () => {
    assert.equal(codeOf(Object.assign(new Error('insufficient resources'), { api_error: { err_code: 10023 } })), 'INSUFFICIENT_STORAGE');
    assert.equal(codeOf(new Error('message size exceeds maximum allowed')), 'PAYLOAD_TOO_LARGE');
    const other = new Error('wrong last sequence: 41');
    assert.equal(storageError(other), other);
  });
});
