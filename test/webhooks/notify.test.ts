// A quota change made through another replica's Store reaches this webhook's cached
// queue within a second (Postgres LISTEN/NOTIFY), with no restart.
import t from 'tap';
import { Store } from '../../store/store.js';
import { createLogger } from '../../observability/logger.js';
import { DATABASE_URL, loadReview, startSluice } from './helpers.js';

const sluice = await startSluice();
t.teardown(() => sluice.close());
sluice.store.startListening();

const limits = (perJobMax: number) => ({ limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 16, bestEffortCap: 16, perJobMax, perUserMax: 0 }] });
// "Another replica": a second Store on the same schema, as a second sluice pod would have.
const other = new Store({ url: DATABASE_URL, schema: sluice.store.schema, log: createLogger('silent') });
t.teardown(() => other.close());

t.test('per-job maximum lowered elsewhere: the webhook denies within one second', async (t) => {
  await other.putQueue('team-a', limits(8));
  const review = loadReview('gpu-pod-validate.json'); // 2 GPUs
  const allowedAt = Date.now();
  let allowed = false;
  while (!allowed && Date.now() - allowedAt < 3000) {
    allowed = (await sluice.post('/webhooks/validate', review)).body.response.allowed === true;
    if (!allowed) await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(allowed, 'allowed under perJobMax 8 (cache filled)');
  // Let the LISTEN connection be up before the change, then check the webhook really
  // answers from its cache (so the change can only arrive by NOTIFY).
  const gauge = async (): Promise<number> => (await sluice.metrics.storeListenerConnected.get()).values[0]?.value ?? 0;
  for (let i = 0; i < 150 && (await gauge()) !== 1; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(await gauge(), 1, 'LISTEN connection up');
  const fromCache = async (): Promise<number> => (await sluice.metrics.queueLookups.get()).values.find((v) => v.labels.source === 'cache')?.value ?? 0;
  await sluice.post('/webhooks/validate', review);
  const hits = await fromCache();
  await sluice.post('/webhooks/validate', review);
  t.equal(await fromCache(), hits + 1, 'the lookup is a cache hit: no database round trip');
  await other.putQueue('team-a', limits(1));
  const changed = Date.now();
  let denied: { allowed: boolean; status?: { message: string } } | null = null;
  while (Date.now() - changed < 1000) {
    const r = (await sluice.post('/webhooks/validate', review)).body.response;
    if (!r.allowed) {
      denied = r;
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  t.ok(denied, `denied ${Date.now() - changed} ms after the change (limit 1000 ms)`);
  t.match(denied?.status?.message, 'pod asks 2 nvidia.com/gpu but queue team-a allows at most 1 per job (1 too many)');
});
