import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import { REDACTED, redactProxyUrl } from '../config/redact-url.js';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

/** Anything pino can write whole lines to. */
export interface LineDestination {
  write(line: string): unknown;
}

export interface LoggerOptions {
  level?: string;
  /** `json` lines for machines, `pretty` for people at a terminal. Default json. */
  format?: LogFormat;
  /** Colours in `pretty`; default: when the destination is a terminal. */
  colorize?: boolean;
  /** Where lines go; stderr by default so stdout stays free for the stdout sink. */
  destination?: LineDestination;
}

/** The paths pino censors. Secrets never reach the logger by construction; this is a second line. */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'key_pass',
  '*.key_pass',
  'password',
  '*.password',
  'private_key_pass',
  '*.private_key_pass',
  'api_key',
  '*.api_key',
  'access_key_id',
  '*.access_key_id',
  'secret_access_key',
  '*.secret_access_key',
  'session_token',
  '*.session_token',
  // A proxy URL may hold a password: only that part is censored, so other URLs stay readable.
  'url',
  '*.url',
];

/** Replaces a value at a redact path; a `url` keeps everything but its password. */
function censorLogValue(value: unknown, path: string[]): unknown {
  if (path[path.length - 1] === 'url' && typeof value === 'string') return redactProxyUrl(value);
  return REDACTED;
}

/** `--log-format` wins, then `log.format`, then pretty on a terminal and JSON everywhere else. */
export function resolveLogFormat(
  flag: LogFormat | undefined,
  configured: LogFormat | undefined,
  stream: { isTTY?: boolean } = process.stderr,
): LogFormat {
  return flag ?? configured ?? (stream.isTTY === true ? 'pretty' : 'json');
}

/**
 * Structured JSON lines. Secrets never reach the logger by construction (the token lives only inside
 * the HTTP client); the redact paths are a second line of defence for headers passed by mistake.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pinoOptions = {
    level: options.level ?? 'info',
    base: undefined,
    redact: { paths: REDACT_PATHS, censor: censorLogValue },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (options.format === 'pretty') {
    const out = options.destination ?? process.stderr;
    const colorize = options.colorize ?? (out as { isTTY?: boolean }).isTTY === true;
    // The synchronous formatter, not the pretty transport stream: a line is on the terminal before the
    // next statement runs, so nothing is lost when the process exits right after logging.
    // Required only here: pino-pretty costs every start a few hundred ms, and JSON is the common case.
    const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    const prettify = pinoPretty.prettyFactory({
      colorize,
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
    return pino(pinoOptions, { write: (line: string) => out.write(prettify(line)) });
  }
  return pino(pinoOptions, options.destination ?? pino.destination({ fd: 2, sync: true }));
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
