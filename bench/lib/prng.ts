/**
 * Seeded randomness for benchmark fixtures: the same seed always gives the same numbers and
 * bytes, so every run of a benchmark works on the same input.
 */
import { createCipheriv, createHash } from 'node:crypto';

/** A seeded generator of floats in [0, 1) (mulberry32: small, fast, good enough for fixtures). */
export type Random = () => number;

/** Creates a generator from a 32-bit seed. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max], both included. */
export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/**
 * A deterministic stream of incompressible bytes: the AES-256-CTR keystream under a key derived
 * from `label`. OpenSSL makes it at GB/s, where a JS generator would be the slowest part of setup.
 */
export function seededBytes(label: string): (size: number) => Buffer {
  const key = createHash('sha256').update(label).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (size) => cipher.update(Buffer.alloc(size));
}
