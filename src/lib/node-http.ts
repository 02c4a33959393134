/**
 * `node:http`, loaded with `require` rather than `import`. An ES import of a built-in module
 * builds its namespace from every export, and node:http's exports include lazy getters
 * (`WebSocket`, `MessageEvent`, `CloseEvent`) whose first read loads Node's fetch implementation
 * (undici): about 9 MiB of RSS and 2 MiB of heap in every process that imports node:http, for
 * code Strata never calls. `require` returns the module object without reading those getters.
 * Measured in docs/benchmarks.md ("Agent memory"); `test/node-http.test.ts` checks that the
 * agent's modules load without undici.
 */
import { createRequire } from 'node:module';

export const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');
