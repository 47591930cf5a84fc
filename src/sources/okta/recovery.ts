import type { JsonObject } from '../../core/json.js';
import { OktaResponseError } from './client.js';

/** Okta's answer to a next link it no longer accepts ("Invalid paging request"). */
export const REJECTED_CURSOR = 'E0000029';

/**
 * A halt on a rejected next link, with the command that resumes from the last committed event. A cursor
 * cannot be rebuilt, so the only way on is a `since` start; it is inclusive, which is what may repeat.
 */
export function withRecoveryCommand(
  err: unknown,
  source: string,
  state: JsonObject,
  configPath: string | undefined,
): unknown {
  if (!(err instanceof OktaResponseError) || err.code !== 'OKTA_BAD_REQUEST') return err;
  if (err.okta.errorCode !== REJECTED_CURSOR) return err;
  const config = configPath === undefined ? '<config file>' : shellQuote(configPath);
  const published = typeof state.last_published === 'string' ? state.last_published : null;
  const since = typeof state.since === 'string' ? state.since : null;
  const from = published ?? since;
  const command = `oktail state reset ${shellQuote(source)}${from ? ` --start-from ${from}` : ''} -c ${config}`;
  const repeats = published
    ? `events published at ${published} (the last committed one included) may be delivered again`
    : from
      ? 'no event was committed yet, so this starts where the source first started'
      : 'the next run then starts from start_from, or from now if it is not set';
  const message =
    `${err.message}. Okta rejected the stored next link, so this source cannot resume from it. ` +
    `To continue from the last committed event, stop oktail and run: ${command} ; ${repeats}.`;
  return new OktaResponseError('OKTA_BAD_REQUEST', message, false, err.status, err.okta, err.headers, err);
}

function shellQuote(text: string): string {
  return /^[\w./:=@%+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
