/*
 * Decimal numbers written straight into a request body, for framing that avoids a string per event.
 */

/** How many decimal digits a non-negative integer has. */
export function decimalDigits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** `n` (a non-negative integer) in decimal at `at`; returns the offset after it. */
export function writeDecimal(out: Buffer, at: number, n: number): number {
  const end = at + decimalDigits(n);
  for (let k = end - 1; k >= at; k--) {
    out[k] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}
