// Did each of the scenario's four steps really happen? Read from the timeline, which holds
// what sluice answered and did in the run. Pure. The demo prints these and exits 1 when one
// fails; test/demo/demo.test.ts asserts them.
import { hhmm, STEPS, type JobTrack, type StepNo, type Timeline } from './timeline.js';

export interface StepCheck {
  step: StepNo;
  ok: boolean;
  /** What was seen (ok) or what was missing. */
  why: string;
}

const released = (j: JobTrack): boolean => j.pods.length > 0 && j.pods.every((p) => p.releasedMs !== null && p.boundMs !== null);
const MINUTE = 60_000;

export function checkSteps(t: Timeline): StepCheck[] {
  const byJob = new Map(t.jobs.map((j) => [j.job, j]));
  const out: StepCheck[] = [];

  // 1. Jobs waited for quota at submission, the warning said so with an expected start,
  //    and the admin API had an estimated start time.
  const waiters = t.jobs.filter((j) => !j.fromSnapshot && j.atSubmit?.state === 'queued' && j.atSubmit.waitingFor === 'quota');
  const told = waiters.filter((j) => j.warnings.some((w) => /^queued in \S+: .*in use.*; expected start in /.test(w)) && j.atSubmit?.etaMs != null);
  out.push({
    step: 1,
    ok: waiters.length >= 2 && told.length === waiters.length,
    why:
      waiters.length === 0
        ? 'no job waited for quota at submission'
        : `${waiters.map((j) => j.job).join(', ')} waited for quota; ${told.length} of ${waiters.length} were warned with an expected start (ETA ${told.map((j) => hhmm(j.atSubmit!.etaMs!)).join(', ')})`,
  });

  // 2. Each of them was released (and bound) at the moment a job of its queue finished,
  //    within a minute of its ETA.
  const finishes = t.events.filter((e) => e.kind === 'finish').map((e) => ({ atMs: e.atMs, queue: byJob.get(e.job)?.queue }));
  const freed = waiters.filter((j) => released(j) && j.pods.every((p) => finishes.some((f) => f.atMs === p.releasedMs && f.queue === j.queue)));
  const onTime = freed.filter((j) => j.atSubmit?.etaMs != null && Math.abs(j.pods[0]!.releasedMs! - j.atSubmit.etaMs) <= MINUTE);
  out.push({
    step: 2,
    ok: waiters.length > 0 && freed.length === waiters.length,
    why: `${freed.length} of ${waiters.length} released when a job of their queue finished (${freed.map((j) => `${j.job} at ${hhmm(j.pods[0]!.releasedMs!)}`).join(', ') || 'none'}); ${onTime.length} within a minute of their ETA`,
  });

  // 3. A best-effort job's pods were deleted for a guaranteed one, which then ran on that
  //    node; sluice recorded the preemption.
  const reclaims = t.jobs.filter((j) => j.endedHow === 'reclaimed');
  const proper = reclaims.filter((v) => {
    const by = v.reclaimedFor ? byJob.get(v.reclaimedFor) : undefined;
    const nodes = new Set(v.pods.map((p) => p.node));
    return (
      v.qos === 'best-effort' &&
      by?.qos === 'guaranteed' &&
      released(by) &&
      by.pods.some((p) => nodes.has(p.node)) &&
      v.apiAfterReclaim?.state === 'preempted' &&
      (v.apiAfterReclaim.preemptedBy ?? '').includes(by.job.split('/')[1]!)
    );
  });
  const wrong = reclaims.filter((v) => !proper.includes(v));
  out.push({
    step: 3,
    ok: proper.length > 0 && wrong.length === 0,
    why:
      reclaims.length === 0
        ? 'nothing was reclaimed'
        : `${reclaims.map((v) => `${v.job} (${v.qos}) for ${v.reclaimedFor ?? '?'} (${v.reclaimedFor ? byJob.get(v.reclaimedFor)?.qos : '?'}) on ${v.pods.map((p) => p.node).join(', ')}; admin API: ${v.apiAfterReclaim?.state ?? 'no record'}`).join('; ')}`,
  });

  // 4. A gang's pods were all released in the same pass, none before its last pod existed, and all bound.
  const gangs = t.jobs.filter((j) => j.gangSize > 1);
  const whole = gangs.filter((g) => {
    const at = new Set(g.pods.map((p) => p.releasedMs));
    const lastSubmit = Math.max(...g.pods.map((p) => p.submittedMs ?? 0));
    return g.pods.length === g.gangSize && released(g) && at.size === 1 && g.pods[0]!.releasedMs! >= lastSubmit;
  });
  out.push({
    step: 4,
    ok: gangs.length > 0 && whole.length === gangs.length,
    why:
      gangs.length === 0
        ? 'no gang was submitted'
        : gangs
            .map(
              (g) =>
                `${g.job}: ${g.pods.length} of ${g.gangSize} pods, released at ${[...new Set(g.pods.map((p) => (p.releasedMs === null ? 'never' : hhmm(p.releasedMs))))].join(' and ')}, on ${g.pods.map((p) => p.node ?? '-').join(', ')}`,
            )
            .join('; '),
  });
  return out;
}

export function checksText(checks: readonly StepCheck[]): string {
  return `${checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.step}. ${STEPS[c.step]}: ${c.why}`).join('\n')}\n`;
}
