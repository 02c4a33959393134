/** Safe extraction of a configuration's layers into a release tree (see unpack-layers.ts). */
export { StreamNotSupported, unpackLayers, type UnpackLayer, type UnpackLimits, type UnpackOptions, type UnpackResult } from './unpack-layers.ts';
export { removeTree } from './remove-tree.ts';
