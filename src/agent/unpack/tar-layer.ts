/** The agent reads tar and tar.gz layers with the shared streaming tar reader (core/archive/tar-reader.ts). */
export { readTarLayer } from '../../core/archive/tar-reader.ts';
