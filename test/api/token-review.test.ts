// Issue 22, defect 6: 3,000 random tokens from one client cost 3,000 TokenReviews and
// pushed accepted tokens out of the cache. Now each client address has a review budget,
// refused tokens are remembered briefly in their own cache, and accepted ones stay.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { ApiAuth, type TokenReviewer } from '../../api/auth.js';
import { createLogger } from '../../observability/logger.js';

function setup(): { auth: ApiAuth; reviewed: string[]; clock: { ms: number } } {
  const reviewed: string[] = [];
  const reviewer: TokenReviewer = async (token) => {
    reviewed.push(token);
    return token.startsWith('good-') ? { user: token, groups: ['sluice:admins'] } : null;
  };
  const clock = { ms: 1_000_000 };
  const auth = new ApiAuth({ token: '', reviewer, adminGroups: ['sluice:admins'], log: createLogger('silent'), now: () => clock.ms });
  return { auth, reviewed, clock };
}

t.test('3,000 bogus tokens from one client: a bounded number of reviews; other clients and cached tokens unaffected', async (t) => {
  const { auth, reviewed } = setup();
  t.match(await auth.check('Bearer good-alice', '10.0.0.1'), { ok: true, user: 'good-alice' });
  let limited = 0;
  for (let i = 0; i < 3000; i++) {
    const r = await auth.check(`Bearer ${randomBytes(16).toString('hex')}`, '10.6.6.6');
    if (!r.ok && r.status === 429) limited++;
  }
  t.ok(reviewed.length <= 1 + 10, `at most the burst of 10 reviews for the flood (${reviewed.length - 1})`);
  t.equal(limited, 3000 - (reviewed.length - 1), 'the rest are refused with 429');
  const before = reviewed.length;
  t.match(await auth.check('Bearer good-alice', '10.0.0.1'), { ok: true }, 'the accepted token is still cached');
  t.equal(reviewed.length, before, 'no new review for it');
  t.match(await auth.check('Bearer good-bob', '10.0.0.2'), { ok: true }, 'another client still gets its review');
  const flooded = await auth.check('Bearer good-carol', '10.6.6.6');
  t.match(
    flooded,
    { ok: false, status: 429, reason: /too many unknown tokens from 10\.6\.6\.6.*retry in \d+ s/ },
    'the flooding client waits, and is told why',
  );
});

t.test('the budget refills; a refused token is not reviewed again for a while', async (t) => {
  const { auth, reviewed, clock } = setup();
  for (let i = 0; i < 10; i++) await auth.check(`Bearer bad-${i}`, '10.0.0.9');
  t.match(await auth.check('Bearer bad-x', '10.0.0.9'), { ok: false, status: 429 });
  clock.ms += 1000;
  t.match(await auth.check('Bearer good-dave', '10.0.0.9'), { ok: true }, 'two reviews a second come back');
  const n = reviewed.length;
  t.match(
    await auth.check('Bearer bad-1', '10.0.0.9'),
    { ok: false, reason: /neither api.token nor a Kubernetes token/ },
    'a refused token answers from its cache',
  );
  t.equal(reviewed.length, n, 'without a review');
  clock.ms += 6000;
  await auth.check('Bearer bad-1', '10.0.0.9');
  t.equal(reviewed.length, n + 1, 'briefly: after 5 s it is reviewed again');
});
