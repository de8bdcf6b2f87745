// Flags of every sluice command and bench script: one spec per command gives the parser,
// the --help text (each flag with its default and one line of meaning) and the
// "unknown flag --seed (did you mean --seeds?)" error.
import { didYouMean } from '../config/closest.js';

export interface FlagSpec {
  /** Without the dashes: 'seeds' is --seeds. */
  name: string;
  /** One-letter alias without the dash: 'o' is -o. */
  short?: string;
  /** Placeholder of the value (N, FILE, a,b); absent: a switch that takes no value. */
  value?: string;
  /** The value may be left out (then `implied` is used). */
  optional?: boolean;
  implied?: string;
  /** The default as a person reads it; absent: none. */
  default?: string;
  /** A flag that may be given more than once (values add up). */
  repeat?: boolean;
  help: string;
}

export interface CommandSpec {
  /** `usage: ...` line(s), without "usage: ". */
  usage: string;
  /** What the command does, one or a few lines. */
  about: string;
  flags: readonly FlagSpec[];
  /** Text after the flags (environment variables, examples). */
  footer?: string;
}

export class FlagError extends Error {
  override name = 'FlagError';
}

export interface Parsed {
  /** Values by flag name (a switch holds 'true'; a repeated flag every value in order). */
  values: Map<string, string[]>;
  positional: string[];
  help: boolean;
  get(name: string): string | undefined;
  all(name: string): string[];
  has(name: string): boolean;
}

const HELP = new Set(['--help', '-h']);

/** Parses argv against spec: --flag VALUE, --flag=VALUE, -f VALUE, switches, positionals.
 * --help/-h anywhere sets help (the caller prints helpText and does nothing else). */
export function parseFlags(argv: readonly string[], spec: CommandSpec, opts: { positional?: boolean } = {}): Parsed {
  const values = new Map<string, string[]>();
  const positional: string[] = [];
  let help = false;
  const known = spec.flags.flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (HELP.has(arg)) {
      help = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (!opts.positional) throw new FlagError(`unexpected argument "${arg}"; flags look like --name VALUE (see --help)`);
      positional.push(arg);
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const given = eq > 0 ? arg.slice(0, eq) : arg;
    const f = spec.flags.find((x) => `--${x.name}` === given || (x.short !== undefined && `-${x.short}` === given));
    if (!f) throw new FlagError(`unknown flag ${given}${didYouMean(given, known)}; see --help for the flags`);
    let v: string;
    if (!f.value) {
      if (eq > 0) throw new FlagError(`flag --${f.name} takes no value`);
      v = 'true';
    } else if (eq > 0) {
      v = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      const missing = next === undefined || (next.startsWith('-') && next !== '-' && !/^-\d/.test(next));
      if (missing && f.optional) v = f.implied ?? '';
      else if (missing) throw new FlagError(`flag --${f.name} needs a value (${f.value}); see --help`);
      else {
        v = next!;
        i++;
      }
    }
    if (f.value && !f.optional && v === '') throw new FlagError(`flag --${f.name} needs a value (${f.value}); see --help`);
    if (values.has(f.name) && !f.repeat) throw new FlagError(`flag --${f.name} is given twice`);
    values.set(f.name, [...(values.get(f.name) ?? []), v]);
  }
  return {
    values,
    positional,
    help,
    get: (name) => values.get(name)?.at(-1),
    all: (name) => values.get(name) ?? [],
    has: (name) => values.has(name),
  };
}

/** The --help text: usage, what it does, then one line per flag with default and meaning. */
export function helpText(spec: CommandSpec): string {
  const left = spec.flags.map((f) => {
    const names = `${f.short ? `-${f.short}, ` : ''}--${f.name}`;
    return f.value ? `${names} ${f.optional ? `[${f.value}]` : f.value}` : names;
  });
  // '-h, --help' is always listed, so it counts for the column too (a script with no flags of its own).
  const width = Math.min(34, Math.max('-h, --help'.length, ...left.map((l) => l.length)) + 2);
  const lines = spec.flags.map((f, i) => {
    const l = left[i]!;
    const meaning = f.help + (f.default !== undefined ? ` (default: ${f.default === '' ? '""' : f.default})` : '');
    return l.length + 2 > width ? `  ${l}\n  ${' '.repeat(width)}${meaning}` : `  ${l.padEnd(width)}${meaning}`;
  });
  return `usage: ${spec.usage}\n\n${spec.about.trimEnd()}\n\nflags:\n${lines.map((l) => `${l}\n`).join('')}  ${'-h, --help'.padEnd(width)}show this text\n${spec.footer ? `\n${spec.footer.trimEnd()}\n` : ''}`;
}

/** For scripts (bench/): parses process.argv; --help prints the text and exits 0, a bad flag
 * prints the error and exits 2. */
export function parseOrExit(argv: readonly string[], spec: CommandSpec, program: string, opts: { positional?: boolean } = {}): Parsed {
  try {
    const p = parseFlags(argv, spec, opts);
    if (p.help) {
      process.stdout.write(helpText(spec));
      process.exit(0);
    }
    return p;
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    process.stderr.write(`${program}: ${e.message}\n`);
    process.exit(2);
  }
}
