import { z } from 'zod';
import { FilePath, Inputs } from '../../config/fields.js';
import type { SinkRegistration } from '../../core/registry.js';
import { FileSink } from './file-sink.js';

export const FileSinkSchema = z
  .strictObject({
    type: z.literal('file').describe('Sink kind.'),
    inputs: Inputs,
    path: FilePath.describe('NDJSON file to append events to. Relative to the config file.'),
  })
  .describe('Appends events as NDJSON lines to a file. Exactly once, across crashes.');

export type FileSinkConfig = z.output<typeof FileSinkSchema>;

export const fileSink: SinkRegistration<FileSinkConfig> = {
  type: 'file',
  schema: FileSinkSchema,
  guarantee: 'exactly-once',
  example: `  # Exactly once: the file's committed length is part of the checkpoint.
  events:
    type: file
    inputs: [okta]
    path: ./okta-system-log.ndjson
`,
  create: (name, config, context) =>
    new FileSink({ name, inputs: config.inputs, path: config.path, log: context.log }),
};
