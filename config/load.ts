// Loads the configuration: defaults < YAML file (--config) < SLUICE_* environment < flags.
// Every leaf key of the schema has an env name and a flag derived from its path:
//   https.certFile  ->  SLUICE_HTTPS_CERT_FILE  and  --https-cert-file
import { readFileSync } from 'node:fs';
import AjvModule from 'ajv';
import yaml from 'js-yaml';
import { didYouMean } from './closest.js';
import { KEY_DESCRIPTIONS } from './descriptions.js';
import { configSchema, type SluiceConfig } from './schema.js';

// ajv ships CommonJS with a default export; under NodeNext the class sits on .default.
const Ajv = AjvModule.default;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface LeafKey {
  path: string[];
  type: string;
  env: string;
  flag: string;
  /** The default as YAML would write it inline (JSON). */
  default: string;
  /** One line of meaning: the schema's description, else config/descriptions.ts; '' when neither. */
  description: string;
  /** Allowed values (enums) and bounds, as a person reads them; '' when none. */
  allowed: string;
}

function allowedOf(sub: Record<string, unknown>): string {
  const items = (sub.items ?? {}) as Record<string, unknown>;
  const e = (sub.enum ?? items.enum) as unknown[] | undefined;
  if (e) return `one of ${e.join(', ')}`;
  if (sub.minimum !== undefined && sub.maximum !== undefined) return `${String(sub.minimum)} to ${String(sub.maximum)}`;
  if (sub.pattern !== undefined) return `matches ${String(sub.pattern)}`;
  return '';
}

const words = (s: string): string[] =>
  s
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(' ');

function leafKeys(schema: Record<string, unknown>, prefix: string[] = []): LeafKey[] {
  const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  const out: LeafKey[] = [];
  for (const [name, sub] of Object.entries(props)) {
    const path = [...prefix, name];
    if (sub.type === 'object') {
      out.push(...leafKeys(sub, path));
      continue;
    }
    const w = path.flatMap(words);
    out.push({
      path,
      type: String(sub.type),
      env: 'SLUICE_' + w.join('_').toUpperCase(),
      flag: '--' + w.join('-'),
      default: JSON.stringify(sub.default),
      description: typeof sub.description === 'string' ? sub.description : (KEY_DESCRIPTIONS[path.join('.')] ?? ''),
      allowed: allowedOf(sub),
    });
  }
  return out;
}

export const CONFIG_KEYS: readonly LeafKey[] = leafKeys(configSchema as unknown as Record<string, unknown>);

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const p of path.slice(0, -1)) {
    const next = node[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[p] = {};
    node = node[p] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function parseScalar(key: LeafKey, raw: string): unknown {
  if (key.type === 'array')
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  return raw; // ajv coerces numbers and booleans and reports a clear error when it cannot
}

/** The keys the schema allows at a dotted path ('' = the top level). */
function keysAt(where: string): string[] {
  let node = configSchema as unknown as { properties?: Record<string, unknown> };
  for (const part of where.split('.').filter(Boolean)) node = (node.properties?.[part] ?? {}) as typeof node;
  return Object.keys(node.properties ?? {});
}

export interface LoadOptions {
  /** Command-line arguments after the subcommand, e.g. ['--config', 'x.yaml', '--http-port', '0']. */
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  /** A config object applied over the defaults, below file/env/flags (used by tests and bench). */
  base?: Record<string, unknown>;
}

/** Returns a validated config with defaults filled in, or throws ConfigError naming the bad key. */
export function loadConfig(opts: LoadOptions = {}): SluiceConfig {
  const argv = opts.argv ?? [];
  const env = opts.env ?? process.env;
  const raw: Record<string, unknown> = structuredClone(opts.base ?? {});

  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}"; flags look like --http-port 8080`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (name !== '--config' && !CONFIG_KEYS.some((k) => k.flag === name)) {
      throw new ConfigError(`unknown flag ${name}${didYouMean(name, ['--config', ...CONFIG_KEYS.map((k) => k.flag)])}; sluice serve --help lists every flag`);
    }
    if (eq > 0) {
      flags.set(arg.slice(0, eq), arg.slice(eq + 1));
    } else {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--'))
        throw new ConfigError(`flag ${arg} needs a value; sluice serve --help lists every flag with its default`);
      flags.set(arg, value);
      i++;
    }
  }

  const file = flags.get('--config') ?? env.SLUICE_CONFIG;
  flags.delete('--config');
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`config file ${file} cannot be read: ${(e as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = yaml.load(text);
    } catch (e) {
      throw new ConfigError(`config file ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (doc !== undefined && doc !== null) {
      if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${file} must hold a YAML mapping`);
      Object.assign(raw, doc);
    }
  }

  // DATABASE_URL is the conventional name; SLUICE_STORE_URL and --store-url still win over it.
  if (env.DATABASE_URL) setPath(raw, ['store', 'url'], env.DATABASE_URL);
  // Likewise REDIS_URL for the queue manager's release queue.
  if (env.REDIS_URL) setPath(raw, ['queue', 'redisUrl'], env.REDIS_URL);
  for (const key of CONFIG_KEYS) {
    const v = env[key.env];
    if (v !== undefined && v !== '') setPath(raw, key.path, parseScalar(key, v));
  }
  for (const [flag, value] of flags) {
    const key = CONFIG_KEYS.find((k) => k.flag === flag);
    if (!key)
      throw new ConfigError(`unknown flag ${flag}${didYouMean(flag, ['--config', ...CONFIG_KEYS.map((k) => k.flag)])}; sluice serve --help lists every flag`);
    setPath(raw, key.path, parseScalar(key, value));
  }

  const ajv = new Ajv({ useDefaults: true, coerceTypes: 'array', allErrors: false });
  const validate = ajv.compile(configSchema);
  if (!validate(raw)) {
    const err = validate.errors?.[0];
    const where = (err?.instancePath ?? '').split('/').filter(Boolean).join('.');
    const extra =
      err?.keyword === 'additionalProperties'
        ? ` "${String(err.params.additionalProperty)}"${didYouMean(String(err.params.additionalProperty), keysAt(where))}`
        : '';
    const allowed = err?.keyword === 'enum' ? ` (${(err.params.allowedValues as string[]).join(', ')})` : '';
    throw new ConfigError(`invalid config key ${where || '(root)'}${extra}: ${err?.message ?? 'invalid'}${allowed}`);
  }
  return raw as unknown as SluiceConfig;
}
