/** The strftime fields that dated names (the s3 `key_prefix`, the file sink's `path`) may use; all UTC. */
export const STRFTIME_FIELDS: Record<string, (d: Date) => string> = {
  Y: (d) => String(d.getUTCFullYear()).padStart(4, '0'),
  m: (d) => String(d.getUTCMonth() + 1).padStart(2, '0'),
  d: (d) => String(d.getUTCDate()).padStart(2, '0'),
  H: (d) => String(d.getUTCHours()).padStart(2, '0'),
  M: (d) => String(d.getUTCMinutes()).padStart(2, '0'),
  S: (d) => String(d.getUTCSeconds()).padStart(2, '0'),
  j: (d) => {
    const start = Date.UTC(d.getUTCFullYear(), 0, 1);
    return String(Math.floor((d.getTime() - start) / 86_400_000) + 1).padStart(3, '0');
  },
  '%': () => '%',
};

/** What config errors list as the allowed fields. */
export const STRFTIME_HELP = '%Y %m %d %H %M %S %j or %% for a literal %';

/** The unknown `%x` fields of a template, for config validation. */
export function unknownStrftimeFields(template: string): string[] {
  const bad: string[] = [];
  for (let i = 0; i < template.length; i++) {
    if (template[i] !== '%') continue;
    const field = template[i + 1];
    if (field === undefined || !(field in STRFTIME_FIELDS)) bad.push(`%${field ?? ''}`);
    i++;
  }
  return bad;
}

/** Whether a template uses a time field (`%%` alone is not one). */
export function hasTimeFields(template: string): boolean {
  for (let i = 0; i < template.length; i++) {
    if (template[i] !== '%') continue;
    const field = template[i + 1];
    if (field !== undefined && field !== '%' && field in STRFTIME_FIELDS) return true;
    i++;
  }
  return false;
}

export function formatStrftime(template: string, date: Date): string {
  return template.replace(/%(.)/g, (whole, field: string) => STRFTIME_FIELDS[field]?.(date) ?? whole);
}
