// The expected-duration estimator: annotation first (capped by the queue), then a decayed
// median of finished jobs like it, else unknown; and a running job's remaining time.
import t from 'tap';
import { estimateDuration, formatDuration, parseDuration, remainingSeconds, weightedQuantile, UNKNOWN_DURATION } from '../../queue/duration.js';

const NOW = Date.parse('2026-12-01T00:00:00Z');
const DAY = 86_400_000;

t.test('parseDuration reads d/h/m/s, largest unit first, and refuses anything else', async (t) => {
  t.equal(parseDuration('45m'), 2700);
  t.equal(parseDuration('1h30m'), 5400);
  t.equal(parseDuration('1d2h'), 93_600);
  t.equal(parseDuration('90s'), 90);
  for (const bad of ['', '0s', '1.5h', '30m1h', '-5m', '10', '1 h', 'PT1H', 'soon']) t.equal(parseDuration(bad), null, bad);
  t.equal(formatDuration(5400), '1h30m');
  t.equal(formatDuration(parseDuration('2d3h4m5s')!), '2d3h4m5s');
});

t.test('the annotation wins over history, and a queue maxDuration caps it', async (t) => {
  const history = [
    { seconds: 100, finishedMs: NOW },
    { seconds: 100, finishedMs: NOW },
    { seconds: 100, finishedMs: NOW },
  ];
  const e = estimateDuration({ annotation: '2h', maxDurationSeconds: null, history, nowMs: NOW });
  t.match(e, { basis: 'annotation', seconds: 7200, lowSeconds: 7200, highSeconds: 7200, capped: false });
  const capped = estimateDuration({ annotation: '2h', maxDurationSeconds: 3600, history, nowMs: NOW });
  t.match(capped, { basis: 'annotation', seconds: 3600, capped: true });
});

t.test('history: a weighted median with its sample size; recent jobs weigh more', async (t) => {
  // Three old 10-minute jobs (2 weeks ago: weight 1/4 each) and two fresh 1-hour jobs.
  const history = [
    { seconds: 600, finishedMs: NOW - 14 * DAY },
    { seconds: 600, finishedMs: NOW - 14 * DAY },
    { seconds: 600, finishedMs: NOW - 14 * DAY },
    { seconds: 3600, finishedMs: NOW },
    { seconds: 3600, finishedMs: NOW },
  ];
  const e = estimateDuration({ annotation: undefined, maxDurationSeconds: null, history, nowMs: NOW });
  t.equal(e.basis, 'history');
  t.equal(e.samples, 5);
  t.equal(e.seconds, 3600, 'an unweighted median would say 600');
  t.equal(e.lowSeconds, 600, 'the old short runs still widen the range');
  t.equal(e.highSeconds, 3600);
  const flat = estimateDuration({ annotation: undefined, maxDurationSeconds: null, history: history.map((h) => ({ ...h, finishedMs: NOW })), nowMs: NOW });
  t.equal(flat.seconds, 600, 'with equal ages the plain median');
});

t.test('too few finished jobs, or a malformed annotation and no history: unknown', async (t) => {
  t.same(estimateDuration({ annotation: undefined, maxDurationSeconds: null, history: [{ seconds: 5, finishedMs: NOW }], nowMs: NOW }), UNKNOWN_DURATION);
  t.equal(estimateDuration({ annotation: 'soon', maxDurationSeconds: null, history: [], nowMs: NOW }).basis, 'unknown');
});

t.test('weightedQuantile picks the first value whose cumulative weight reaches q', async (t) => {
  const xs = [1, 2, 3, 4].map((s) => ({ seconds: s, weight: 1 }));
  t.equal(weightedQuantile(xs, 0.5), 2);
  t.equal(weightedQuantile(xs, 0.51), 3);
  t.equal(weightedQuantile(xs, 1), 4);
});

t.test('remaining time: ahead of the estimate, overrun with history, overrun past everything', async (t) => {
  const history = [60, 120, 600, 3600].map((seconds) => ({ seconds, finishedMs: NOW }));
  const e = estimateDuration({ annotation: undefined, maxDurationSeconds: null, history, nowMs: NOW });
  t.equal(e.seconds, 120);
  t.equal(remainingSeconds(e, 20, 'mid'), 100);
  t.equal(remainingSeconds(e, 300, 'mid'), 300, 'outlived the median: the median of the jobs that ran longer than 300 s (600, 3600) is 600');
  t.equal(remainingSeconds(e, 300, 'high'), 3300);
  t.equal(remainingSeconds(e, 5000, 'mid'), 0, 'longer than any known: due now');
  t.equal(remainingSeconds(UNKNOWN_DURATION, 5, 'mid'), null);
});
