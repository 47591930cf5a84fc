import { randomBytes } from 'node:crypto';

/** A fast seedable generator: test data must be reproducible from a seed, and crypto is too slow per field. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform 32-bit unsigned integer. */
  u32(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * sfc32: 128 bits of state, so the ids drawn from it do not repeat the way a 32-bit generator's would
 * after a few tens of thousands of events. Unseeded, the state comes from the OS.
 */
export function createRandom(seed?: number): Random {
  let a: number, b: number, c: number, d: number;
  if (seed === undefined) {
    const bytes = randomBytes(16);
    [a, b, c, d] = [
      bytes.readUInt32LE(0),
      bytes.readUInt32LE(4),
      bytes.readUInt32LE(8),
      bytes.readUInt32LE(12),
    ];
  } else {
    const mix = splitmix32(Math.floor(seed) ^ Math.floor(seed / 0x1_0000_0000));
    [a, b, c, d] = [mix(), mix(), mix(), mix()];
  }
  const u32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // Discard the first outputs: sfc32 mixes poorly straight after seeding.
  for (let i = 0; i < 12; i++) u32();
  const next = (): number => u32() / 0x1_0000_0000;
  const int = (n: number): number => Math.floor(next() * n);
  return { next, u32, int, pick: <T>(items: readonly T[]): T => items[int(items.length)] as T };
}
