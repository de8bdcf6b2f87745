// The demo's timeline: what happened in the run, as data (for the checks, the picture and
// demo-timeline.json) and as the text a person follows. Pure.

export type StepNo = 1 | 2 | 3 | 4;

/** The scenario's four steps (issue 19), in the words the timeline prints. */
export const STEPS: Record<StepNo, string> = {
  1: 'Jobs over quota wait, with warnings and ETAs',
  2: 'Capacity frees and they are released',
  3: 'A best-effort job is reclaimed for a guaranteed one',
  4: 'A gang starts whole',
};

export type EventKind = 'submit' | 'release' | 'bind' | 'finish' | 'reclaim';

export interface TimelineEvent {
  atMs: number;
  step: StepNo;
  kind: EventKind;
  /** namespace/job the event is about. */
  job: string;
  /** One line, as printed after the time. */
  text: string;
  /** Further lines: the warning kubectl prints, what the admin API says. */
  details: string[];
}

export interface PodTrack {
  /** namespace/name */
  pod: string;
  submittedMs: number | null;
  /** Gate removed by the queue manager (null: never gated, or still gated). */
  releasedMs: number | null;
  boundMs: number | null;
  node: string | null;
  endedMs: number | null;
}

export interface JobTrack {
  /** namespace/job */
  job: string;
  queue: string;
  qos: 'guaranteed' | 'best-effort';
  user: string;
  /** GPUs of the whole job, and per pod. */
  gpus: number;
  gpusPerPod: number;
  model: string;
  gangSize: number;
  /** sluice.io/expected-duration, as declared; null: none. */
  expected: string | null;
  /** Running in the snapshot before the demo began. */
  fromSnapshot: boolean;
  pods: PodTrack[];
  /** What the admin API said right after the (last) pod was submitted. */
  atSubmit: { state: string; waitingFor: string; reason: string; position: number | null; etaMs: number | null; etaUnknown: string | null } | null;
  /** The submit-time warnings (one per pod, as kubectl prints them). */
  warnings: string[];
  endedHow: 'finished' | 'reclaimed' | null;
  /** For a reclaimed job: the guaranteed job that took its GPUs, and what the admin API recorded. */
  reclaimedFor: string | null;
  apiAfterReclaim: { state: string; preemptedBy: string | null } | null;
}

export interface Timeline {
  /** One line on what ran: the snapshot, the queues. */
  setup: string[];
  startMs: number;
  endMs: number;
  events: TimelineEvent[];
  jobs: JobTrack[];
}

/** "09:30" (UTC): the demo's clock reads as a working morning. */
export const hhmm = (ms: number): string => new Date(ms).toISOString().slice(11, 16);

/** The timeline as text: the setup, then each step's events under its heading, in time order. */
export function timelineText(t: Timeline): string {
  const out: string[] = [...t.setup, ''];
  let step: StepNo | null = null;
  for (const e of t.events) {
    if (e.step !== step) {
      if (step !== null) out.push('');
      step = e.step;
      out.push(`${step}. ${STEPS[step]}`);
    }
    out.push(`  ${hhmm(e.atMs)}  ${e.text}`);
    for (const d of e.details) out.push(`         ${d}`);
  }
  return `${out.join('\n')}\n`;
}
