// How the CLI reaches the admin API: URL and token from flags, else the environment
// (SLUICE_API_URL, SLUICE_API_TOKEN), else the token of the kubeconfig's current context
// (the admin API accepts a user's own Kubernetes token through TokenReview).
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export class CliError extends Error {}

export interface Connection {
  /** Base URL of sluice's API listener, without /api/v1. */
  url: string;
  token: string;
  ca?: Buffer;
  insecure: boolean;
}

export interface ConnectionFlags {
  server?: string;
  token?: string;
  certificateAuthority?: string;
  insecure?: boolean;
}

const NO_URL =
  'no admin API URL; pass --server URL or set SLUICE_API_URL (e.g. kubectl -n sluice-system port-forward svc/sluice 9443:443, then https://localhost:9443)';

export async function connect(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Promise<Connection> {
  const raw = flags.server || env.SLUICE_API_URL || '';
  if (!raw) throw new CliError(NO_URL);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`admin API URL "${raw}" is not a URL; give one like https://localhost:9443`);
  }
  const token = flags.token || env.SLUICE_API_TOKEN || (await kubeconfigToken(env));
  if (!token) throw new CliError('no token for the admin API; pass --token, set SLUICE_API_TOKEN, or use a kubeconfig whose current context has a token');
  const caFile = flags.certificateAuthority || env.SLUICE_API_CA || '';
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      throw new CliError(`cannot read the CA file ${caFile} (${(e as Error).message}); pass the file that holds sluice's CA (ca.crt)`);
    }
  }
  return { url: url.href.replace(/\/+$/, '').replace(/\/api\/v1$/, ''), token, ca, insecure: !!flags.insecure };
}

/** The bearer token of the current context, also from exec plugins; '' when there is none. */
async function kubeconfigToken(env: NodeJS.ProcessEnv): Promise<string> {
  const kc = new KubeConfig();
  try {
    if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG.split(':')[0]!);
    else kc.loadFromDefault();
  } catch {
    return '';
  }
  if (!kc.getCurrentUser()) return '';
  // node-fetch's Headers (client-node's own), not the global one. With no kubeconfig at all,
  // loadFromDefault invents a context at http://localhost:8080 whose agent client-node refuses
  // to build: that is "no token", not a crash.
  let opts: { headers?: { get?: (name: string) => string | null } & Record<string, unknown> };
  try {
    opts = (await kc.applyToFetchOptions({})) as typeof opts;
  } catch {
    return '';
  }
  const h = typeof opts.headers?.get === 'function' ? opts.headers.get('authorization') : (opts.headers?.Authorization as string | undefined);
  return /^Bearer\s+(\S+)$/i.exec(h ?? '')?.[1] ?? '';
}

export interface Answer<T> {
  status: number;
  body: T;
}

/** One request to the admin API; JSON in and out. Refusals (4xx/5xx) are returned, not thrown. */
export function call<T>(conn: Connection, method: string, path: string, body?: unknown): Promise<Answer<T>> {
  const target = new URL(conn.url + path);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method,
        headers: { authorization: `Bearer ${conn.token}`, accept: 'application/json', ...(payload ? { 'content-type': 'application/json' } : {}) },
        ca: conn.ca,
        rejectUnauthorized: !conn.insecure,
        timeout: 15000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            return reject(new CliError(`${method} ${target.pathname} answered ${res.statusCode} with non-JSON text; is ${conn.url} sluice's API listener?`));
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 15 s')));
    req.on('error', (e) =>
      reject(new CliError(`cannot reach the admin API at ${conn.url} (${e.message}); check --server / SLUICE_API_URL and that sluice runs`)),
    );
    req.end(payload);
  });
}

/** GET that must succeed: a refusal becomes a CliError with the API's own message. */
export async function get<T>(conn: Connection, path: string): Promise<T> {
  const res = await call<T & { message?: string }>(conn, 'GET', path);
  if (res.status !== 200) throw new CliError(`GET ${path}: ${res.status} ${(res.body as { message?: string } | null)?.message ?? ''}`.trim());
  return res.body;
}
