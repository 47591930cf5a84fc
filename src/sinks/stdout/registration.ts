import * as z from 'zod';
import { Inputs } from '../../config/fields.js';
import type { SinkRegistration } from '../../core/registry.js';
import { StdoutSink } from './stdout-sink.js';

export const StdoutSinkSchema = z
  .strictObject({
    type: z.literal('stdout').describe('Sink kind.'),
    inputs: Inputs,
  })
  .describe('Writes events as NDJSON lines to standard output. At least once.');

export type StdoutSinkConfig = z.output<typeof StdoutSinkSchema>;

export const stdoutSink: SinkRegistration<StdoutSinkConfig> = {
  type: 'stdout',
  schema: StdoutSinkSchema,
  guarantee: 'at-least-once',
  example: `  # At least once: a pipe cannot be rolled back after a crash.
  # console:
  #   type: stdout
  #   inputs: [okta]
`,
  create: (name, config, context) => new StdoutSink({ name, inputs: config.inputs, stream: context.stdout }),
};
