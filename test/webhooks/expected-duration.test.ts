// sluice.io/expected-duration at admission, over HTTPS with a real Store: a malformed value
// is denied naming the format, one beyond the queue's maxDuration is denied with both
// numbers, and maxDurationSeconds round-trips through the store (migration 004).
import t from 'tap';
import { loadReview, QUEUE_TEAM_A, startSluice, type Review } from './helpers.js';

const sluice = await startSluice();
t.teardown(() => sluice.close());
const capped = await sluice.store.putQueue('capped', { maxDurationSeconds: 7200, limits: QUEUE_TEAM_A.limits });
await sluice.store.putQueue('team-a', QUEUE_TEAM_A);

function review(queue: string, duration: string | undefined): Review {
  const r = loadReview('gpu-pod-validate.json');
  const pod = r.request.object!;
  pod.metadata.labels['sluice.io/queue'] = queue;
  if (duration !== undefined) pod.metadata.annotations['sluice.io/expected-duration'] = duration;
  return r;
}

t.test('maxDurationSeconds is stored and read back', async (t) => {
  t.equal(capped.queue.maxDurationSeconds, 7200);
  t.equal((await sluice.store.getQueue('team-a'))?.maxDurationSeconds, null, 'no cap unless set');
});

t.test('a malformed expected duration is denied, and the message names the format', async (t) => {
  for (const bad of ['soon', '1.5h', '-5m', '0s']) {
    const res = await sluice.post('/webhooks/validate', review('team-a', bad));
    t.equal(res.body.response.allowed, false, bad);
    t.equal(res.body.response.status?.code, 422, bad);
    t.equal(
      res.body.response.status?.message,
      `annotation sluice.io/expected-duration is "${bad}"; write a positive duration such as 45m, 2h, 1h30m, 90s or 1d (units d, h, m, s, largest first)`,
    );
  }
});

t.test("a duration beyond the queue's maxDuration is denied with both numbers", async (t) => {
  const res = await sluice.post('/webhooks/validate', review('capped', '3h'));
  t.equal(res.body.response.allowed, false);
  t.equal(res.body.response.status?.code, 403);
  t.equal(
    res.body.response.status?.message,
    'annotation sluice.io/expected-duration declares 3h (10800 s) but queue capped allows at most 2h (7200 s); declare at most 2h or submit to another queue',
  );
});

t.test('within the cap, without a cap, or not declared: allowed', async (t) => {
  for (const [queue, d] of [
    ['capped', '2h'],
    ['capped', '45m'],
    ['team-a', '30d'],
    ['capped', undefined],
  ] as const) {
    const res = await sluice.post('/webhooks/validate', review(queue, d));
    t.equal(res.body.response.allowed, true, `${queue} ${d ?? '(none)'}`);
  }
});
