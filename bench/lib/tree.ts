/**
 * A deterministic file tree for ingest benchmarks: many small files, medium ones and a few large
 * ones, half of the bytes text-like (compresses like source code or logs) and half random
 * (compresses not at all, like images or already-compressed assets).
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { randomInt, seededBytes, seededRandom, type Random } from './prng.ts';

/** The shape of a generated tree. */
export interface TreeSpec {
  /** Total bytes of file content, exactly. */
  totalBytes: number;
  /** Number of small files (hundreds of bytes to a few KiB). */
  smallFiles: number;
  /** Number of large files (10–50 MiB). */
  largeFiles: number;
  /** Seed of every choice and every byte. */
  seed: number;
}

/** What was generated. */
export interface TreeSummary {
  files: number;
  directories: number;
  bytes: number;
  textBytes: number;
  randomBytes: number;
  small: { files: number; bytes: number };
  medium: { files: number; bytes: number };
  large: { files: number; bytes: number };
}

type Kind = 'text' | 'random';
type SizeClass = 'small' | 'medium' | 'large';

interface PlannedFile {
  relative: string;
  size: number;
  sizeClass: SizeClass;
  kind: Kind;
}

const KIB = 1024;
const MIB = 1024 * KIB;
const SMALL_PER_DIR = 100;
const MEDIUM_PER_DIR = 50;
const WRITE_CHUNK = 4 * MIB;

/** The default tree of the ingest benchmark: 512 MiB, 20,000 small files, 6 large ones. */
export const INGEST_TREE: TreeSpec = { totalBytes: 512 * MIB, smallFiles: 20_000, largeFiles: 6, seed: 0x5157a7a };

/** A vocabulary of identifier-like words; skewed choice among them gives text a realistic gzip ratio (about 3–4×). */
function vocabulary(random: Random): Buffer[] {
  const syllables = ['st', 'ra', 'ta', 'con', 'fig', 'ver', 'sion', 'blob', 'agent', 'id', 'at', 'er', 'un', 'pack', 'el', 'o', 'lo', 'gi', 'cal', 'de', 'ploy', 'man', 'ex', 'ist', 'ing', 'is', 'a', 'the', 'in', 'to'];
  const symbols = ['{', '}', '(', ')', ';', '=', '=>', '//', '+', '.', ',', ':', '0', '1', '42', '"', 'const', 'return', 'if', 'await'];
  const words: Buffer[] = symbols.map((symbol) => Buffer.from(symbol));
  while (words.length < 4096) {
    let word = '';
    for (let count = randomInt(random, 1, 4); count > 0; count -= 1) word += syllables[randomInt(random, 0, syllables.length - 1)];
    if (random() < 0.3) word += String(randomInt(random, 0, 999));
    if (random() < 0.2) word = word[0]!.toUpperCase() + word.slice(1);
    words.push(Buffer.from(word));
  }
  return words;
}

/** Fills `buffer` with text-like lines: indentation, skewed word choice, punctuation. */
function fillText(buffer: Buffer, random: Random, words: Buffer[]): void {
  let at = 0;
  let lineLeft = 0;
  while (at < buffer.length) {
    if (lineLeft === 0) {
      if (at > 0) buffer[at++] = 0x0a;
      lineLeft = randomInt(random, 2, 12);
      for (let indent = 2 * randomInt(random, 0, 3); indent > 0 && at < buffer.length; indent -= 1) buffer[at++] = 0x20;
      continue;
    }
    // Cubing skews choice toward the first words, as identifiers and keywords repeat in real text.
    const u = random();
    const word = words[Math.floor(u * u * u * words.length)]!;
    const room = Math.min(word.length, buffer.length - at);
    word.copy(buffer, at, 0, room);
    at += room;
    if (at < buffer.length && lineLeft > 1) buffer[at++] = 0x20;
    lineLeft -= 1;
  }
}

/** Lays out the files: sizes and paths from the seed, kinds alternating so text and random bytes stay even. */
function plan(spec: TreeSpec, random: Random): PlannedFile[] {
  const files: Omit<PlannedFile, 'kind'>[] = [];
  let left = spec.totalBytes;
  for (let index = 0; index < spec.largeFiles; index += 1) {
    const size = randomInt(random, 10 * MIB, 50 * MIB);
    files.push({ relative: `large/large-${index}`, size, sizeClass: 'large' });
    left -= size;
  }
  for (let index = 0; index < spec.smallFiles; index += 1) {
    const size = randomInt(random, 200, 4 * KIB);
    const dir = Math.floor(index / SMALL_PER_DIR);
    files.push({ relative: `small/${String(Math.floor(dir / 20)).padStart(2, '0')}/${String(dir % 20).padStart(2, '0')}/file-${index}`, size, sizeClass: 'small' });
    left -= size;
  }
  if (left < 10 * KIB) throw new Error(`tree spec leaves ${left} bytes for medium files; raise totalBytes`);
  for (let index = 0; left > 0; index += 1) {
    // Squaring skews medium files toward the small end, as in real build outputs.
    const u = random();
    let size = 10 * KIB + Math.floor(u * u * (MIB - 10 * KIB));
    if (left - size < 10 * KIB) size = left;
    files.push({ relative: `medium/${String(Math.floor(index / MEDIUM_PER_DIR)).padStart(3, '0')}/file-${index}`, size, sizeClass: 'medium' });
    left -= size;
  }
  let text = 0;
  let randomBytes = 0;
  return files.map((file) => {
    const kind: Kind = text <= randomBytes ? 'text' : 'random';
    if (kind === 'text') text += file.size;
    else randomBytes += file.size;
    return { ...file, relative: `${file.relative}${kind === 'text' ? '.txt' : '.bin'}`, kind };
  });
}

/** Writes one file in chunks, so a 50 MiB file never needs 50 MiB of memory. */
function writeFile(absolute: string, file: PlannedFile, random: Random, words: Buffer[], randomStream: (size: number) => Buffer): void {
  const fd = openSync(absolute, 'w', 0o644);
  try {
    for (let left = file.size; left > 0; left -= WRITE_CHUNK) {
      const size = Math.min(left, WRITE_CHUNK);
      let chunk: Buffer;
      if (file.kind === 'random') {
        chunk = randomStream(size);
      } else {
        chunk = Buffer.allocUnsafe(size);
        fillText(chunk, random, words);
      }
      writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
}

/** Generates the tree under `root` (which must exist and be empty); the same spec always gives the same bytes. */
export function generateTree(root: string, spec: TreeSpec): TreeSummary {
  const random = seededRandom(spec.seed);
  const words = vocabulary(random);
  const randomStream = seededBytes(`strata-bench-tree-${spec.seed}`);
  const files = plan(spec, random);
  const directories = new Set<string>();
  const summary: TreeSummary = {
    files: 0, directories: 0, bytes: 0, textBytes: 0, randomBytes: 0,
    small: { files: 0, bytes: 0 }, medium: { files: 0, bytes: 0 }, large: { files: 0, bytes: 0 },
  };
  for (const file of files) {
    const absolute = path.join(root, file.relative);
    const dir = path.dirname(absolute);
    if (!directories.has(dir)) {
      mkdirSync(dir, { recursive: true });
      for (let ancestor = dir; ancestor !== root && !directories.has(ancestor); ancestor = path.dirname(ancestor)) directories.add(ancestor);
    }
    writeFile(absolute, file, random, words, randomStream);
    summary.files += 1;
    summary.bytes += file.size;
    if (file.kind === 'text') summary.textBytes += file.size;
    else summary.randomBytes += file.size;
    summary[file.sizeClass].files += 1;
    summary[file.sizeClass].bytes += file.size;
  }
  summary.directories = directories.size;
  return summary;
}
