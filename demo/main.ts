// `npm run demo`: sluice with no cluster. The real sluice runs on the example snapshot with
// its queue manager on the in-memory cluster and a simulated clock; a scripted scenario
// (scenario.ts) is printed as a timeline and drawn as a picture. See README "Without a cluster".
import { resolve } from 'node:path';
import { parseOrExit, type CommandSpec } from '../cli/flags.js';
import { checkSteps, checksText } from './checks.js';
import { DemoError, runDemo, type DemoRun } from './run.js';
import { timelineText } from './timeline.js';

const DEFAULT_STORE = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const DEFAULT_CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const DEMO: CommandSpec = {
  usage: 'npm run demo -- [flags]   (node dist/demo/main.js)',
  about: `sluice without a cluster: the real sluice (webhooks, queue manager, extender, admin API) runs on
a cluster snapshot with its queue manager on the in-memory cluster and a simulated clock, and a
scripted morning plays out in a few seconds: 1. jobs over quota wait, with warnings and ETAs;
2. capacity frees and they are released; 3. a best-effort job is reclaimed for a guaranteed one;
4. a gang starts whole. It prints the timeline, writes it as a picture (SVG, and PNG when
chromium is installed) and as JSON, and exits 1 if a step did not happen.
Needs PostgreSQL (queues and quotas; schema --store-schema is emptied first); Redis is not needed.`,
  flags: [
    {
      name: 'snapshot',
      value: 'FILE',
      default: 'examples/cluster-snapshot.json',
      help: "the cluster: kubectl get nodes,pods -A -o json (the script expects the example's nodes)",
    },
    { name: 'out', value: 'DIR', default: 'demo-out', help: 'where demo-timeline.{txt,svg,png,json} and sluice.log go' },
    { name: 'store-url', value: 'URL', default: '$DATABASE_URL or postgres://postgres@127.0.0.1:5432/test', help: 'PostgreSQL for the queues and job records' },
    { name: 'store-schema', value: 'NAME', default: 'sluice_demo', help: 'schema the demo empties and uses (must start with sluice_demo)' },
    { name: 'chromium', value: 'PATH', default: '$CHROMIUM_PATH or /usr/bin/chromium', help: 'browser that renders the PNG; none there: SVG only' },
    { name: 'quiet', help: 'print only the checks and where the files are' },
  ],
};

async function main(): Promise<number> {
  const args = parseOrExit(process.argv.slice(2), DEMO, 'npm run demo --');
  const o = {
    snapshot: resolve(args.get('snapshot') ?? 'examples/cluster-snapshot.json'),
    out: resolve(args.get('out') ?? 'demo-out'),
    storeUrl: args.get('store-url') ?? DEFAULT_STORE,
    storeSchema: args.get('store-schema') ?? 'sluice_demo',
    chromium: args.get('chromium') ?? DEFAULT_CHROMIUM,
  };
  let run: DemoRun;
  try {
    run = await runDemo(o);
  } catch (e) {
    if (e instanceof DemoError || (e as Error).name === 'ConfigError' || (e as Error).name === 'SnapshotError') {
      process.stderr.write(`demo: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  }
  const checks = checkSteps(run.timeline);
  if (!args.has('quiet')) process.stdout.write(`${timelineText(run.timeline)}\n`);
  process.stdout.write(checksText(checks));
  process.stdout.write(
    `\ntimeline: ${run.files.txt}\npicture:  ${run.files.svg}${run.files.png ? `, ${run.files.png}` : ` (no PNG: ${run.pngSkipped})`}\ndata:     ${run.files.json}\nsluice's own log: ${run.files.log}\n`,
  );
  return run.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
