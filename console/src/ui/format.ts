// How the console writes money and time: NPR with paisa precision (integer
// arithmetic, never floats) and dates in Nepal time.

const GROUPING = new Intl.NumberFormat('en-IN', { maximumFractionDigits: 0 });

/** 123456 paisa -> "NPR 1,234.56" (Indian/Nepali digit grouping: 1,23,456.00). */
export function formatNpr(paisa: number | null | undefined): string {
  if (paisa === null || paisa === undefined) return '—';
  const negative = paisa < 0;
  const abs = Math.abs(Math.trunc(paisa));
  const rupees = Math.floor(abs / 100);
  const rest = String(abs % 100).padStart(2, '0');
  return `${negative ? '−' : ''}NPR ${GROUPING.format(rupees)}.${rest}`;
}

/**
 * "12.50" or "12" (rupees, as typed) -> 1250 paisa, exactly; null when it is
 * not an amount with at most two decimals.
 */
export function parseNpr(text: string): number | null {
  const match = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(text);
  if (!match) return null;
  const rupees = Number(match[1]);
  const paisa = Number((match[2] ?? '').padEnd(2, '0'));
  return rupees * 100 + paisa;
}

export const TIME_ZONE = 'Asia/Kathmandu';

const DATE_TIME = new Intl.DateTimeFormat('en-GB', {
  timeZone: TIME_ZONE,
  day: '2-digit',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

/** An API timestamp (RFC 3339) or unix seconds, in Kathmandu time. */
export function formatDateTime(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === '') return '—';
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return `${DATE_TIME.format(date)} NPT`;
}

/** "3 min ago", for heartbeats and similar. */
export function formatAgo(value: string | null | undefined, now = Date.now()): string {
  if (!value) return 'never';
  const then = new Date(value).getTime();
  if (Number.isNaN(then)) return value;
  const secs = Math.max(0, Math.round((now - then) / 1000));
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86_400) return `${Math.floor(secs / 3600)} h ago`;
  return `${Math.floor(secs / 86_400)} d ago`;
}

/** Microseconds as "0.42 ms" or "850 µs". */
export function formatMicros(us: number | null | undefined): string {
  if (us === null || us === undefined) return '—';
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us} µs`;
}

export function formatCount(n: number): string {
  return GROUPING.format(n);
}

/** A filter field left empty is left out of the query. */
export function given(value: string): string | undefined {
  return value.trim() || undefined;
}
