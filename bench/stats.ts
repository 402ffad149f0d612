/**
 * Small statistics and formatting helpers for the benchmarks: percentiles
 * (nearest rank, so every figure is a value that was really measured),
 * summaries, and the result table.
 */

/** Nearest-rank percentile: the smallest sample with at least p% of samples at or below it. NaN if empty. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function mean(samples: readonly number[]): number {
  return samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : NaN;
}

export interface Summary {
  n: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(samples: readonly number[]): Summary {
  return {
    n: samples.length,
    min: samples.length ? Math.min(...samples) : NaN,
    mean: mean(samples),
    p50: percentile(samples, 50),
    p95: percentile(samples, 95),
    p99: percentile(samples, 99),
    max: samples.length ? Math.max(...samples) : NaN,
  };
}

/** A target a figure is compared with (printed next to it; never asserted). */
export interface Target {
  op: '<' | '<=' | '>' | '>=';
  value: number;
}

export interface Figure {
  metric: string;
  value: number;
  unit: string;
  target?: Target;
  /** Whether the figure is on the right side of its target (information only). */
  meetsTarget?: boolean;
}

export function figure(metric: string, value: number, unit: string, target?: Target): Figure {
  const f: Figure = { metric, value, unit };
  if (target) {
    f.target = target;
    f.meetsTarget = meets(value, target);
  }
  return f;
}

function meets(v: number, t: Target): boolean {
  switch (t.op) {
    case '<':
      return v < t.value;
    case '<=':
      return v <= t.value;
    case '>':
      return v > t.value;
    case '>=':
      return v >= t.value;
  }
}

/** A number with sensible precision for a table: 1657, 124.3, 3.87, 0.483. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000 || Number.isInteger(v)) return Math.round(v).toString();
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

export function formatTarget(t: Target | undefined, unit: string): string {
  return t ? `${t.op} ${formatNumber(t.value)} ${unit}`.trim() : '';
}

/** Renders rows as a plain-text table with left-aligned columns (right-aligned where `right[i]`). */
export function renderTable(header: string[], rows: string[][], right: boolean[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
