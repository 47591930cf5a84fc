/*
 * Kept free of imports so the logger can use it without pulling in the config schema.
 */

export const REDACTED = '[redacted]';

/**
 * A URL with its password (if any) replaced: what may be shown of a proxy URL. A URL without a password
 * comes back as written (less a trailing slash); text that is not a URL is replaced whole.
 */
export function redactProxyUrl(url: string): string {
  if (url === '') return url;
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return parsed.href.replace(/\/$/, '');
    // Built by hand: the URL class would percent-encode the brackets of the placeholder.
    return `${parsed.protocol}//${parsed.username}:${REDACTED}@${parsed.host}`;
  } catch {
    return REDACTED;
  }
}
