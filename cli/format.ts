// Pure formatting for the CLI: kubectl-style tables (upper-case headers, columns padded
// and separated by three spaces, no borders) and short ages.

export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** kubectl's age style: 45s, 12m, 3h, 5d. */
export function age(since: string | null | undefined, now = Date.now()): string {
  if (!since) return '-';
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (Number.isNaN(s)) return '-';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export const dash = (v: string | number | null | undefined): string => (v === null || v === undefined || v === '' ? '-' : String(v));

/** An estimated start as the ETA column shows it: ~40m, ~3h, now, or - when not known. */
export function eta(at: string | null | undefined, now = Date.now()): string {
  if (!at) return '-';
  const t = Date.parse(at);
  if (Number.isNaN(t)) return '-';
  if (t <= now) return 'now';
  return `~${age(new Date(now - (t - now)).toISOString(), now)}`;
}
