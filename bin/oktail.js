#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// For the commands that collect: V8 grows its young generation (up to 16 MB a half) when start-up leaves
// much alive, and then collects it seldom: a run allocates little inside the heap per page, so the TLS
// chunks each page arrives in (2 MB outside the heap, freed only when a collection finds their handles
// dead) piled up by the tens of MB between collections. Kept at its initial size it is collected every
// page or two, at no CPU cost a run shows. V8 reads the factor whenever the space would grow, so it takes
// effect set here, before any module loads. The other commands start a little faster without it.
// Even so, some chunks outlive two scavenges and are promoted; dead, they wait for the old generation's
// next marking, which V8 schedules after a growth it picks from its own speed: a million-event backfill
// marked 11 times, and the memory outside the heap climbed from 6 to 24 MB between markings. Capping
// the growth at 25% (V8 still grows by at least 8 MB) marked 14 times, about 4 ms each, and took that
// backfill's peak RSS from 100-103 MB (6 runs) to 94-97 MB (6 runs) at the same CPU.
const command = process.argv[2];
if (command === 'run' || command === 'demo') {
  setFlagsFromString('--semi-space-growth-factor=1');
  setFlagsFromString('--heap-growing-percent=25');
}
// The bundle of dist/ that `npm run build` writes (tools/build.mjs): a few files to load instead of hundreds.
await import('../dist/bundle/main.js');
