#!/usr/bin/env node
// The sluice command. `sluice serve` runs everything; other subcommands are tools.
import { readFileSync } from 'node:fs';
import { didYouMean } from '../config/closest.js';
import { CONFIG_KEYS, loadConfig } from '../config/load.js';
import { helpText, type CommandSpec } from '../cli/flags.js';

// Each command loads only what it needs (import() below): `sluice --version` and --help do
// not load the server, client-node or node-forge.

/** Errors that are a person's mistake: one line on stderr, exit 2, no stack. */
const USER_ERRORS = new Set(['CliError', 'FlagError', 'ConfigError', 'SnapshotError', 'CertError', 'PolicyError', 'RotationPolicyError']);

const USAGE = `usage: sluice <command> [flags]

commands:
  serve      run the scheduler extender, webhooks, queue manager and admin API against the
             cluster in KUBECONFIG, or against a snapshot file with --cluster-snapshot FILE
  certs      certs generate: a CA and a serving certificate for the webhooks
  get        get queues|jobs|nodes: the admin API as kubectl-style tables
  describe   describe job NAMESPACE/NAME: one job, why it waits, its pods
  apply      apply -f FILE: create or replace the queues listed in FILE
  version    print the version (also --version)
  help       show this text

sluice <command> --help shows a command's flags with their defaults.
get, describe and apply are also the kubectl plugin: kubectl sluice get queues.
`;

/** `sluice serve --help`: every config key as a flag, with its default and meaning (config/schema.ts). */
export function serveSpec(): CommandSpec {
  const placeholder = (type: string): string =>
    type === 'integer' ? 'N' : type === 'boolean' ? 'true|false' : type === 'array' ? 'a,b' : type === 'object' ? 'YAML' : 'VALUE';
  return {
    usage: 'sluice serve [--config FILE] [flags]',
    about: `Runs sluice: the API listener (extender, webhooks, admin API) and the ops listener
(/healthz, /readyz, /metrics). Every flag is also a key of the --config YAML file and an
environment variable (shown in brackets); flags win over the environment, which wins over the file.`,
    flags: [
      { name: 'config', value: 'FILE', default: '$SLUICE_CONFIG', help: 'YAML file with any of the keys below (docs/configuration.md)' },
      ...CONFIG_KEYS.map((k) => ({
        name: k.flag.slice(2),
        value: placeholder(k.type),
        default: k.default,
        help: `${k.description}${k.allowed ? ` (${k.allowed})` : ''} [${k.path.join('.')}, ${k.env}]`,
      })),
    ],
  };
}

/** The version in sluice's package.json (dist/bin/ in a package, bin/ in the source tree). */
function version(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'sluice' && pkg.version) return pkg.version;
    } catch {
      // not there; try the next place
    }
  }
  return 'unknown';
}

/** Longest graceful shutdown before sluice exits anyway. */
const SHUTDOWN_LIMIT_MS = 25_000;

const COMMANDS = ['serve', 'certs', 'get', 'describe', 'apply', 'version', 'help', '--version', '--help'];

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve': {
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(helpText(serveSpec()));
        return 0;
      }
      const config = loadConfig({ argv: rest });
      const { serve } = await import('../server/run.js');
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
      return (await import('../certs/cli.js')).certsCommand(rest);
    case 'get':
    case 'describe':
    case 'apply':
      return (await import('../cli/commands.js')).cliCommand(argv);
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`sluice ${version()}\n`);
      return 0;
    case 'help':
      // `sluice help serve` is `sluice serve --help`.
      if (rest[0] && rest[0] !== 'help') return main([rest[0], '--help']);
      process.stdout.write(USAGE);
      return 0;
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`sluice: unknown command "${cmd}"${didYouMean(cmd, COMMANDS)}\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  async (e: unknown) => {
    const kind = e instanceof Error ? e.constructor.name : '';
    if (USER_ERRORS.has(kind)) {
      process.stderr.write(`sluice: ${(e as Error).message}\n`);
      process.exit(2);
    }
    if (kind === 'NoClusterError') {
      const { TRY_WITHOUT_CLUSTER } = await import('../server/run.js');
      process.stderr.write(`sluice: ${(e as Error).message}; ${TRY_WITHOUT_CLUSTER}\n`);
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
