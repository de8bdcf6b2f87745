// Who sees what in the web console. Admins (api.token, or a Kubernetes user in one of
// api.adminGroups: the admin API's own check) see everything. Any other user the apiserver
// authenticates sees the cluster map and queue totals, and the jobs of the namespaces where
// a SubjectAccessReview says they may list pods (Kueue's visibility rule per LocalQueue).
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import { createHash } from 'node:crypto';
import type { ApiAuth, TokenReviewer } from '../api/auth.js';
import type { Logger } from '../observability/logger.js';

/** May this user list pods in this namespace? */
export type AccessReviewer = (user: string, groups: readonly string[], namespace: string) => Promise<boolean>;

export type Viewer = { kind: 'admin'; user: string } | { kind: 'user'; user: string; groups: readonly string[] };

export type WhoResult = { ok: true; viewer: Viewer } | { ok: false; reason: string };

export interface ConsoleAccessOptions {
  auth: ApiAuth;
  /** TokenReview for non-admin users; null = only admins can sign in. */
  reviewer: TokenReviewer | null;
  /** SubjectAccessReview; null = non-admins see no namespace's jobs. */
  accessReviewer: AccessReviewer | null;
  log: Logger;
  /** How long a TokenReview or SubjectAccessReview answer is reused (default 30 s). */
  ttlMs?: number;
}

const digest = (s: string): string => createHash('sha256').update(s).digest('hex');

export class ConsoleAccess {
  private readonly identities: LRUCache<string, { user: string; groups: string[] } | 'unknown'>;
  private readonly decisions: LRUCache<string, boolean>;

  constructor(private readonly opts: ConsoleAccessOptions) {
    const ttl = opts.ttlMs ?? 30_000;
    this.identities = new LRUCache({ max: 1000, ttl });
    this.decisions = new LRUCache({ max: 20_000, ttl });
  }

  /** Who an Authorization header belongs to: an admin (the admin API's rule) or another signed-in user. */
  async who(header: string | undefined): Promise<WhoResult> {
    const admin = await this.opts.auth.check(header);
    if (admin.ok) return { ok: true, viewer: { kind: 'admin', user: admin.user } };
    const token = /^Bearer\s+(\S+)$/i.exec((header ?? '').trim())?.[1];
    if (!token || !this.opts.reviewer) return { ok: false, reason: admin.reason };
    const key = digest(token);
    let id = this.identities.get(key);
    if (!id) {
      try {
        id = (await this.opts.reviewer(token)) ?? 'unknown';
      } catch (e) {
        this.opts.log.warn({ err: (e as Error).message }, 'console sign-in: TokenReview failed');
        return { ok: false, reason: `cannot check the token with the apiserver (${(e as Error).message}); retry in a moment` };
      }
      this.identities.set(key, id);
    }
    if (id === 'unknown')
      return {
        ok: false,
        reason: 'the token is neither api.token nor a Kubernetes token the apiserver accepts; paste a service-account or OIDC token (kubectl create token ...)',
      };
    return { ok: true, viewer: { kind: 'user', user: id.user, groups: id.groups } };
  }

  /** The namespaces among `namespaces` whose jobs the viewer may see (all of them for admins). */
  async visible(viewer: Viewer, namespaces: Iterable<string>): Promise<Set<string>> {
    const all = new Set(namespaces);
    if (viewer.kind === 'admin') return all;
    const out = new Set<string>();
    const check = this.opts.accessReviewer;
    if (!check) return out;
    await Promise.all(
      [...all].map(async (ns) => {
        const key = `${viewer.user}\u0000${viewer.groups.join(',')}\u0000${ns}`;
        let allowed = this.decisions.get(key);
        if (allowed === undefined) {
          try {
            allowed = await check(viewer.user, viewer.groups, ns);
          } catch (e) {
            // Not cached: refused this time, asked again next time.
            this.opts.log.warn({ err: (e as Error).message, user: viewer.user, namespace: ns }, 'console: SubjectAccessReview failed; namespace hidden');
            return;
          }
          this.decisions.set(key, allowed);
        }
        if (allowed) out.add(ns);
      }),
    );
    return out;
  }
}

/** "May user list pods in namespace?" asked of the apiserver (SubjectAccessReview). */
export function kubeAccessReviewer(kc: KubeConfig): AccessReviewer {
  const api = kc.makeApiClient(AuthorizationV1Api);
  return async (user, groups, namespace) => {
    const review = await api.createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: { user, groups: [...groups], resourceAttributes: { namespace, verb: 'list', resource: 'pods' } },
      },
    });
    return review.status?.allowed === true;
  };
}
