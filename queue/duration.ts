// How long a job is expected to run: what every start-time estimate rests on. Pure: the
// finished-job history is read at the edge (queue/duration-history.ts) and passed in.
//
// A job's expected duration, in order:
// 1. its annotation sluice.io/expected-duration (the user's own estimate), at most the
//    queue's maxDuration (admission denies a longer one; a queue that lowers its cap later
//    caps the jobs already queued);
// 2. otherwise learned from finished jobs of the same user, queue and job kind: the median
//    of their run times, each weighted by how recent it is (half-life HALF_LIFE_MS), with
//    the sample size; the 10th and 90th weighted percentiles are its range;
// 3. otherwise unknown, and said so.
export const ANNOTATION_EXPECTED_DURATION = 'sluice.io/expected-duration';

/** The format admission names when it denies a value. */
export const DURATION_FORMAT = 'a positive duration such as 45m, 2h, 1h30m, 90s or 1d (units d, h, m, s, largest first)';

const UNIT_SECONDS = { d: 86_400, h: 3_600, m: 60, s: 1 } as const;
const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Seconds, or null when `raw` is not DURATION_FORMAT. */
export function parseDuration(raw: string): number | null {
  const m = DURATION_RE.exec(raw.trim());
  if (!m || raw.trim() === '') return null;
  const [, d, h, min, s] = m;
  const total = Number(d ?? 0) * UNIT_SECONDS.d + Number(h ?? 0) * UNIT_SECONDS.h + Number(min ?? 0) * UNIT_SECONDS.m + Number(s ?? 0);
  return total > 0 && Number.isSafeInteger(total) ? total : null;
}

/** 5400 -> "1h30m"; the inverse of parseDuration for messages. */
export function formatDuration(seconds: number): string {
  let rest = Math.round(seconds);
  if (rest <= 0) return '0s';
  let out = '';
  for (const [unit, size] of Object.entries(UNIT_SECONDS)) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

/**
 * The run time (s) past which a job is overdue: its declared sluice.io/expected-duration,
 * at most its queue's maxDuration; the maxDuration alone when it declared none (or a
 * malformed value); null when it has neither. Past it, a best-effort job is reclaimed first
 * (placement/victims.ts).
 */
export function timeLimitSeconds(annotation: string | undefined, maxDurationSeconds: number | null): number | null {
  const declared = annotation !== undefined ? parseDuration(annotation) : null;
  if (declared === null) return maxDurationSeconds;
  return maxDurationSeconds === null ? declared : Math.min(declared, maxDurationSeconds);
}

/** One finished job like this one: how long it ran and when it ended. */
export interface DurationSample {
  seconds: number;
  finishedMs: number;
}

export type DurationBasis = 'annotation' | 'history' | 'unknown';

export interface DurationEstimate {
  basis: DurationBasis;
  /** Expected run time (s); null when unknown. */
  seconds: number | null;
  /** Range of the run time (s): the annotation itself, or the 10th..90th weighted percentile. */
  lowSeconds: number | null;
  highSeconds: number | null;
  /** Finished jobs the history estimate rests on (0 otherwise). */
  samples: number;
  /** The annotation asked for more than the queue's maxDuration and was cut to it. */
  capped: boolean;
  /** History samples as weighted run times, sorted (for a running job's remaining time). */
  weighted: ReadonlyArray<{ seconds: number; weight: number }>;
}

export const HALF_LIFE_MS = 7 * 86_400_000;
/** Fewer finished jobs than this and the history says nothing. */
export const MIN_SAMPLES = 3;

export interface EstimateInput {
  /** The raw sluice.io/expected-duration value, if any. */
  annotation: string | undefined;
  /** The queue's maxDuration (s), or null for none. */
  maxDurationSeconds: number | null;
  /** Finished jobs of the same user, queue and kind (any order). */
  history: readonly DurationSample[];
  nowMs: number;
  halfLifeMs?: number;
  minSamples?: number;
}

export const UNKNOWN_DURATION: DurationEstimate = {
  basis: 'unknown',
  seconds: null,
  lowSeconds: null,
  highSeconds: null,
  samples: 0,
  capped: false,
  weighted: [],
};

export function estimateDuration(input: EstimateInput): DurationEstimate {
  const cap = input.maxDurationSeconds ?? Number.POSITIVE_INFINITY;
  const declared = input.annotation !== undefined ? parseDuration(input.annotation) : null;
  if (declared !== null) {
    const s = Math.min(declared, cap);
    return { basis: 'annotation', seconds: s, lowSeconds: s, highSeconds: s, samples: 0, capped: declared > cap, weighted: [] };
  }
  if (input.history.length < (input.minSamples ?? MIN_SAMPLES)) return UNKNOWN_DURATION;
  const halfLife = input.halfLifeMs ?? HALF_LIFE_MS;
  const weighted = input.history
    .map((h) => ({ seconds: Math.min(h.seconds, cap), weight: Math.pow(2, -Math.max(0, input.nowMs - h.finishedMs) / halfLife) }))
    .sort((a, b) => a.seconds - b.seconds);
  return {
    basis: 'history',
    seconds: weightedQuantile(weighted, 0.5),
    lowSeconds: weightedQuantile(weighted, 0.1),
    highSeconds: weightedQuantile(weighted, 0.9),
    samples: weighted.length,
    capped: false,
    weighted,
  };
}

/** The smallest value whose cumulative weight reaches q of the total (input sorted by seconds). */
export function weightedQuantile(sorted: ReadonlyArray<{ seconds: number; weight: number }>, q: number): number {
  const total = sorted.reduce((a, s) => a + s.weight, 0);
  let cum = 0;
  for (const s of sorted) {
    cum += s.weight;
    if (cum >= q * total - 1e-12) return s.seconds;
  }
  return sorted[sorted.length - 1]?.seconds ?? 0;
}

export type Scenario = 'low' | 'mid' | 'high';
export const SCENARIOS: readonly Scenario[] = ['low', 'mid', 'high'];

/** Run time (s) in each scenario, or null when unknown. */
export function scenarioSeconds(e: DurationEstimate, s: Scenario): number | null {
  return s === 'low' ? e.lowSeconds : s === 'high' ? e.highSeconds : e.seconds;
}

/**
 * How much longer a job that has run `elapsedS` is expected to run, per scenario (s):
 * 1. unknown estimate: null;
 * 2. the scenario's run time is still ahead: that run time minus what has elapsed;
 * 3. it has overrun it, with history: the same quantile of the past jobs that ran longer
 *    than this one has so far (a job that outlived most of its peers is like the long ones);
 * 4. it has overrun everything known: expected to end now (0), the job is overdue.
 */
export function remainingSeconds(e: DurationEstimate, elapsedS: number, s: Scenario): number | null {
  const total = scenarioSeconds(e, s);
  if (total === null) return null;
  if (total > elapsedS) return total - elapsedS;
  const longer = e.weighted.filter((w) => w.seconds > elapsedS);
  if (longer.length > 0) return weightedQuantile(longer, s === 'low' ? 0.1 : s === 'high' ? 0.9 : 0.5) - elapsedS;
  return 0;
}
