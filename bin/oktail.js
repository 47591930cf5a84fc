#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// For the commands that collect: V8 grows its young generation (up to 16 MB a half) when start-up leaves
// much alive, and then collects it seldom: a run allocates little inside the heap per page, so the TLS
// chunks each page arrives in (2 MB outside the heap, freed only when a collection finds their handles
// dead) piled up by the tens of MB between collections. Kept at its initial size it is collected every
// page or two, at no CPU cost a run shows. V8 reads the factor whenever the space would grow, so it takes
// effect set here, before any module loads. The other commands start a little faster without it.
const command = process.argv[2];
if (command === 'run' || command === 'demo') setFlagsFromString('--semi-space-growth-factor=1');
// The bundle of dist/ that `npm run build` writes (tools/build.mjs): a few files to load instead of hundreds.
await import('../dist/bundle/main.js');
