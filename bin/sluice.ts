#!/usr/bin/env node
// The sluice command. `sluice serve` runs everything; other subcommands are tools.
import { ConfigError, CONFIG_KEYS, loadConfig } from '../config/load.js';
import { SnapshotError } from '../cluster/snapshot.js';
import { certsCommand } from '../certs/cli.js';
import { CliError } from '../cli/api-client.js';
import { cliCommand } from '../cli/commands.js';
import { CertError } from '../certs/generate.js';
import { RotationPolicyError } from '../certs/rotation.js';
import { PolicyError } from '../webhooks/policy.js';
import { NoClusterError, serve, TRY_WITHOUT_CLUSTER } from '../server/run.js';

const USAGE = `usage: sluice <command> [flags]

commands:
  serve      run the scheduler extender (and the other parts) against the cluster in
             KUBECONFIG, or against a snapshot file with --cluster-snapshot FILE
  certs      certs generate --out DIR --service NAME --namespace NS [--dns ..] [--ip ..]:
             a CA and a serving certificate for the webhooks (sluice certs help)
  get        get queues|jobs|nodes [-q QUEUE] [-o wide|json|yaml]: the admin API as tables
  describe   describe job NAMESPACE/NAME
  apply      apply -f FILE: create or replace the queues listed in FILE
             (get, describe, apply: sluice get --help; also as kubectl sluice ...)
  help       show this text

serve flags (each also settable in the --config YAML file or as an env variable):
  --config FILE
${CONFIG_KEYS.map((k) => `  ${k.flag.padEnd(28)} ${k.env}`).join('\n')}
`;

/** Longest graceful shutdown before sluice exits anyway. */
const SHUTDOWN_LIMIT_MS = 25_000;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve': {
      const config = loadConfig({ argv: rest });
      const running = await serve(config);
      const stop = (signal: string): void => {
        running.log.info({ signal }, 'shutting down');
        // Inside kubelet's default grace period (30 s): a shutdown step stuck on an
        // unreachable apiserver or Postgres must not leave the process to SIGKILL.
        setTimeout(() => {
          running.log.error({ afterMs: SHUTDOWN_LIMIT_MS }, 'shutdown did not finish in time; exiting');
          process.exit(1);
        }, SHUTDOWN_LIMIT_MS).unref();
        void running.close().then(() => process.exit(0));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      return -1; // keep running
    }
    case 'certs':
      return certsCommand(rest);
    case 'get':
    case 'describe':
    case 'apply':
      return cliCommand(argv);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`sluice: unknown command "${cmd}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof CliError || e instanceof ConfigError || e instanceof SnapshotError || e instanceof CertError || e instanceof PolicyError || e instanceof RotationPolicyError) {
      process.stderr.write(`sluice: ${e.message}\n`);
      process.exit(2);
    }
    if (e instanceof NoClusterError) {
      process.stderr.write(`sluice: ${e.message}; ${TRY_WITHOUT_CLUSTER}\n`);
      process.exit(1);
    }
    const err = e as { code?: string; message?: string };
    if (err.code === 'EADDRINUSE') {
      process.stderr.write(`sluice: ${err.message}; choose another port with --https-port / --http-port\n`);
      process.exit(1);
    }
    process.stderr.write(`sluice: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
