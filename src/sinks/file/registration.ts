import * as z from 'zod';
import { FilePath, Inputs } from '../../config/fields.js';
import type { SinkRegistration } from '../../core/registry.js';
import { hasTimeFields, STRFTIME_HELP, unknownStrftimeFields } from '../shared/strftime.js';
import { DatedFileSink } from './dated-file-sink.js';
import { FileSink } from './file-sink.js';

export const FileSinkSchema = z
  .strictObject({
    type: z.literal('file').describe('Sink kind.'),
    inputs: Inputs,
    path: FilePath.describe(
      "NDJSON file to append events to. Relative to the config file. May hold strftime fields (%Y %m %d %H %M %S %j), filled from each event's published (UTC): one file per day with %Y-%m-%d.",
    ),
  })
  .superRefine((cfg, ctx) => {
    // A path without time fields is taken literally, as it always was; with them, every % is a field.
    if (!hasTimeFields(cfg.path)) return;
    const bad = unknownStrftimeFields(cfg.path);
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['path'],
        message: `has unknown fields ${bad.join(', ')}; use ${STRFTIME_HELP}`,
      });
    }
  })
  .describe('Appends events as NDJSON lines to a file, or to dated files. Exactly once, across crashes.');

export type FileSinkConfig = z.output<typeof FileSinkSchema>;

export const fileSink: SinkRegistration<FileSinkConfig> = {
  type: 'file',
  schema: FileSinkSchema,
  guarantee: 'exactly-once',
  example: `  # Exactly once: the file's committed length is part of the checkpoint.
  # strftime fields in the path (e.g. ./okta-%Y-%m-%d.ndjson) give one file per day of published (UTC).
  events:
    type: file
    inputs: [okta]
    path: ./okta-system-log.ndjson
`,
  create: (name, config, context) =>
    hasTimeFields(config.path)
      ? new DatedFileSink({
          name,
          inputs: config.inputs,
          template: config.path,
          dataDir: context.dataDir,
          log: context.log,
        })
      : new FileSink({ name, inputs: config.inputs, path: config.path, log: context.log }),
};
