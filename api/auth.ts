// Who may use the admin API: a bearer token equal to api.token (compared in constant
// time), or - when a cluster is configured and api.tokenReview is on - a Kubernetes
// token that a TokenReview authenticates for a user in one of api.adminGroups.
// TokenReviews cost the apiserver: each client address may start a few per second (a
// token bucket), refused tokens are remembered briefly in a cache of their own (so a flood
// of bogus tokens neither repeats reviews nor pushes accepted tokens out), and accepted
// ones for reviewTtlMs.
import { createHash, timingSafeEqual } from 'node:crypto';
import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../observability/logger.js';

export type AuthResult =
  | { ok: true; user: string }
  | {
      ok: false;
      reason: string;
      /** 429 when the client is over its review budget; 403 when the token is valid but its user is no admin; else 401. */
      status?: 403 | 429;
      retryAfterSeconds?: number;
    };

/** Asks the apiserver who a token belongs to; null = not authenticated. */
export type TokenReviewer = (token: string) => Promise<{ user: string; groups: string[] } | null>;

export interface AuthOptions {
  /** Static admin token; '' = none. */
  token: string;
  reviewer: TokenReviewer | null;
  adminGroups: readonly string[];
  log: Logger;
  /** How long a TokenReview answer is reused. */
  reviewTtlMs?: number;
  /** How long to wait for the apiserver's TokenReview answer (default 5 s). */
  reviewTimeoutMs?: number;
  /** How long a refused token's answer is reused (default 5 s). */
  negativeTtlMs?: number;
  /** TokenReviews a client address may start: per second, and at once (defaults 2 and 10). */
  reviewsPerClientPerSecond?: number;
  reviewBurstPerClient?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export class ApiAuth {
  private readonly tokenDigest: Buffer | null;
  private readonly reviews: LRUCache<string, AuthResult>;
  private readonly refusals: LRUCache<string, AuthResult>;
  private readonly budgets = new LRUCache<string, Bucket>({ max: 10000 });
  /** Reviews in flight by token digest: identical tokens arriving together make one call. */
  private readonly inflight = new Map<string, Promise<AuthResult>>();

  constructor(private readonly opts: AuthOptions) {
    this.tokenDigest = opts.token ? digest(opts.token) : null;
    const clock = opts.now ? { perf: { now: opts.now }, ttlResolution: 0 } : {};
    this.reviews = new LRUCache({ max: 1000, ttl: opts.reviewTtlMs ?? 30000, ...clock });
    this.refusals = new LRUCache({ max: 10000, ttl: opts.negativeTtlMs ?? 5000, ...clock });
  }

  /** Takes one review from the client's bucket; the seconds until one is available when empty. */
  private spend(client: string): number {
    const rate = this.opts.reviewsPerClientPerSecond ?? 2;
    const burst = this.opts.reviewBurstPerClient ?? 10;
    const now = (this.opts.now ?? Date.now)();
    const b = this.budgets.get(client) ?? { tokens: burst, atMs: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.atMs) / 1000) * rate);
    b.atMs = now;
    this.budgets.set(client, b);
    if (b.tokens < 1) return Math.ceil((1 - b.tokens) / rate);
    b.tokens -= 1;
    return 0;
  }

  /** Checks an Authorization header value sent from `client` (its address). */
  async check(header: string | undefined, client = 'unknown'): Promise<AuthResult> {
    if (!this.tokenDigest && !this.opts.reviewer) {
      return {
        ok: false,
        reason: 'the admin API has no credentials configured; set api.token (env SLUICE_API_TOKEN) or run with a cluster and api.tokenReview',
      };
    }
    // The auth-scheme is case-insensitive (RFC 7235 section 2.1): "bearer x" is accepted too.
    const h = (header ?? '').trim();
    const scheme = /^(\S+)/.exec(h)?.[1] ?? '';
    if (scheme && scheme.toLowerCase() !== 'bearer') {
      return { ok: false, reason: `Authorization scheme "${scheme.slice(0, 20)}" is not supported; send the header "Authorization: Bearer <token>"` };
    }
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (!m) return { ok: false, reason: 'missing bearer token; send the header "Authorization: Bearer <token>"' };
    const token = m[1]!;
    const d = digest(token);
    // Digests have equal length, so timingSafeEqual never throws and leaks no length.
    if (this.tokenDigest && timingSafeEqual(d, this.tokenDigest)) return { ok: true, user: 'api-token' };
    if (!this.opts.reviewer) return { ok: false, reason: 'bearer token is not valid for the admin API; use the value of api.token' };
    const key = d.toString('hex');
    const cached = this.reviews.get(key) ?? this.refusals.get(key);
    if (cached) return cached;
    let pending = this.inflight.get(key);
    if (!pending) {
      const wait = this.spend(client);
      if (wait > 0) {
        return {
          ok: false,
          status: 429,
          retryAfterSeconds: wait,
          reason: `too many unknown tokens from ${client}: each costs a TokenReview at the apiserver; retry in ${wait} s, or use api.token`,
        };
      }
      pending = this.review(this.opts.reviewer, token, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async review(reviewer: TokenReviewer, token: string, key: string): Promise<AuthResult> {
    const within = this.opts.reviewTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${within} ms`)), within);
      timer.unref();
    });
    let result: AuthResult;
    try {
      const who = await Promise.race([reviewer(token), timeout]);
      if (!who) result = { ok: false, reason: 'bearer token is neither api.token nor a Kubernetes token the apiserver accepts' };
      else if (!who.groups.some((g) => this.opts.adminGroups.includes(g))) {
        result = {
          ok: false,
          status: 403,
          reason: `user ${who.user} is not in an admin group (${this.opts.adminGroups.join(', ')}); ask an admin to add you or use api.token`,
        };
      } else result = { ok: true, user: who.user };
    } catch (e) {
      // Not cached: the next request tries the apiserver again.
      this.opts.log.warn({ err: (e as Error).message }, 'TokenReview failed; admin API request refused');
      return { ok: false, reason: `cannot check the token with the apiserver (${(e as Error).message}); retry or use api.token` };
    } finally {
      clearTimeout(timer);
    }
    if (result.ok) this.reviews.set(key, result);
    else this.refusals.set(key, result);
    return result;
  }
}

export function kubeTokenReviewer(kc: KubeConfig): TokenReviewer {
  const api = kc.makeApiClient(AuthenticationV1Api);
  return async (token) => {
    const review = await api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } });
    const st = review.status;
    if (!st?.authenticated || !st.user?.username) return null;
    return { user: st.user.username, groups: st.user.groups ?? [] };
  };
}
