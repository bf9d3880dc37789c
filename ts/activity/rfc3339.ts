/**
 * RFC 3339 UTC timestamps with a `Z` suffix and 0, 3, 6 or 9 fractional digits as needed
 * (what chrono's AutoSi prints, PROTOCOL §4.7). Kept free of imports: the heartbeat worker
 * embeds its source.
 */
export function formatRfc3339(epochMs: number, subMsNanos = 0): string {
  const whole = Math.floor(epochMs);
  const ms = ((whole % 1000) + 1000) % 1000;
  const nanos = ms * 1_000_000 + subMsNanos;
  const base = new Date(whole - ms).toISOString().slice(0, 19);
  if (nanos === 0) return `${base}Z`;
  if (nanos % 1_000_000 === 0) return `${base}.${String(nanos / 1_000_000).padStart(3, '0')}Z`;
  if (nanos % 1_000 === 0) return `${base}.${String(nanos / 1_000).padStart(6, '0')}Z`;
  return `${base}.${String(nanos).padStart(9, '0')}Z`;
}
