// The extender's decisions: filter, prioritize and bind over the cluster cache. Fit and
// scores come from the pure placement layer; this class only resolves nodes, reads
// the pod a bind names, and records binds in the assume ledger. HTTP lives in routes.ts, the
// Kubernetes call of bind in binder.ts.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { ClusterCache } from '../cluster/cache.js';
import { podHostRequests, podShareAsks, PodRequestError, type ContainerShare, type ResourceAmount } from '../cluster/pod-request.js';
import { placeContainers, policyPick, type DeviceUse } from '../placement/shares.js';
import { bindShares, type HamiApi, type HamiNodeLocks } from './hami-bind.js';
import type { PolicyName } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PodBinder } from './binder.js';
import { askOnNode, fit } from '../placement/fit.js';
import { podFitsNode, type NodeLookup, type PodMisfit, type PodNeeds } from '../placement/pod-fits-node.js';
import { parseModelList } from '../placement/gpu-model.js';
import { WHOLE } from '../placement/types.js';
import { podRecord, type PodRecord } from '../cluster/pod-record.js';
import { bestFeasible } from '../placement/best-nodes.js';
import { POLICY_BY_NAME, toExtenderScores, type Policy } from '../placement/policies.js';
import type { GpuAsk, NodeView, SizeMix } from '../placement/types.js';
import type { BindFailureCause, BindFailureSink } from '../store/bind-failures.js';
import { LABEL_JOB, LABEL_QUEUE } from '../webhooks/labels.js';
import { ANNOTATION_GPU_MODEL, podAsk, type PodAsk } from './pod-ask.js';
import type { ExtenderArgs, ExtenderBindingArgs, ExtenderBindingResult, ExtenderFilterResult, HostPriority } from './wire.js';

export interface ExtenderOptions {
  cache: ClusterCache;
  binder: PodBinder;
  defaultPolicy: PolicyName;
  log: Logger;
  metrics: Metrics;
  /** scheduler.filterBest: k > 0 = filter passes only the k nodes the policy places a GPU
   * pod best on; 0 (default) = every node that fits. */
  filterBest?: number;
  /** GPU shares: HAMi's node lock and the apiserver calls of its protocol (hami-bind.ts);
   * absent = share pods are bound like whole-GPU pods. */
  shares?: { locks: HamiNodeLocks; api: HamiApi };
  /** Where failed binds are recorded besides the log and sluice_binds_total (Postgres). */
  bindFailures?: BindFailureSink;
}

type Candidate = { name: string; node: V1Node | null };

const NEUTRAL_SCORE = 5;
// One shared string, without the name (the answer's key is the name): a request naming many
// unknown nodes gets an answer about as large as itself, and kube-scheduler's event
// aggregates identical reasons into one count.
export { UNKNOWN_NODE } from '../placement/pod-fits-node.js';

/** Where a pod may run, from its record (the informer's copy of the pod as the apiserver has it). */
function needsOf(p: Pick<PodRecord, 'requests' | 'annotations' | 'nodeSelector' | 'affinityTerms' | 'shares'>, shareResource?: string): PodNeeds {
  const models = parseModelList(p.annotations[ANNOTATION_GPU_MODEL]);
  const asks = p.requests.map((r): GpuAsk => {
    const ask: GpuAsk = { resource: r.resource, count: r.count, milli: WHOLE, models };
    // A share pod fits by its containers' memory, cores and slots, as filter checks it.
    if (p.shares && r.resource === shareResource) ask.shares = p.shares.filter((x): x is ContainerShare => x !== null);
    return ask;
  });
  return { asks, nodeSelector: p.nodeSelector, affinityTerms: p.affinityTerms };
}
/** Unknown nodes listed with that reason; past this they are only counted. kube-scheduler
 * names the nodes of its own informer, so hundreds of unknown names are not its requests,
 * and they stay out of NodeNames either way. */
export const MAX_UNKNOWN_LISTED = 100;
/**
 * Nodes decided between two yields to the event loop: the webhooks share this loop, and a
 * 10,000-node filter decided in one go held it for 15-50 ms (README "Limits"). Requests
 * with fewer nodes run without yielding.
 */
export const NODES_PER_SLICE = 1000;
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Extender {
  private readonly cache: ClusterCache;
  private readonly binder: PodBinder;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  readonly defaultPolicy: PolicyName;
  readonly filterBest: number;
  private readonly shares: ExtenderOptions['shares'];
  private readonly bindFailures: BindFailureSink | undefined;

  constructor(opts: ExtenderOptions) {
    const k = opts.filterBest ?? 0;
    if (!Number.isInteger(k) || k < 0) throw new Error(`filterBest must be a whole number >= 0, got ${k}`);
    this.filterBest = k;
    this.cache = opts.cache;
    this.binder = opts.binder;
    this.log = opts.log;
    this.metrics = opts.metrics;
    this.defaultPolicy = opts.defaultPolicy;
    this.shares = opts.shares;
    this.bindFailures = opts.bindFailures;
  }

  // Parsed on every request: no cache by uid@resourceVersion, because a request from anyone
  // could have planted an entry under a real pod's key. Parsing a pod takes microseconds.
  private ask(pod: V1Pod): PodAsk {
    return podAsk(pod, this.cache.resources, this.cache.shareNames);
  }

  private candidates(args: ExtenderArgs): { list: Candidate[]; full: boolean } {
    if (Array.isArray(args.NodeNames)) return { list: args.NodeNames.map((name) => ({ name, node: null })), full: false };
    const items = args.Nodes?.items ?? [];
    return { list: items.map((node) => ({ name: node.metadata?.name ?? '', node })), full: true };
  }

  private view(c: Candidate, resource: string): NodeView | undefined {
    return c.node ? this.cache.viewOfNode(c.node, resource) : this.cache.nodeView(c.name, resource);
  }

  async filter(args: ExtenderArgs): Promise<ExtenderFilterResult> {
    const { list, full } = this.candidates(args);
    const result: ExtenderFilterResult = {
      Nodes: null,
      NodeNames: null,
      FailedNodes: {},
      FailedAndUnresolvableNodes: {},
      Error: '',
    };
    let ask: PodAsk;
    try {
      ask = this.ask(args.Pod);
    } catch (e) {
      if (!(e instanceof PodRequestError)) throw e;
      result.Error = `pod ${podName(args.Pod)}: ${e.message}`;
      return result;
    }
    const needs = filterNeeds(ask.asks);
    const passed: Candidate[] = [];
    // Counted locally and added to the metric once per kind: a prom-client inc() per
    // rejected node showed up in the profile at 5,000 nodes.
    const rejected = new Map<string, number>();
    let unknown = 0;
    for (let i = 0; i < list.length; i++) {
      if (i > 0 && i % NODES_PER_SLICE === 0) await yieldToLoop();
      const c = list[i]!;
      const reason = this.misfit(c, needs);
      if (reason === null) {
        passed.push(c);
        continue;
      }
      rejected.set(reason.kind, (rejected.get(reason.kind) ?? 0) + 1);
      if (reason.kind === 'unknown_node' && ++unknown > MAX_UNKNOWN_LISTED) continue;
      if (reason.resolvable) {
        result.FailedNodes[c.name] = reason.reason;
      } else {
        result.FailedAndUnresolvableNodes[c.name] = reason.reason;
      }
    }
    let kept = passed;
    if (this.filterBest > 0 && ask.asks.length > 0 && passed.length > this.filterBest) {
      // The fitting nodes not kept are left out of the answer, not listed as failed:
      // kube-scheduler drops a node the extender neither passes nor fails, and preemption
      // still considers it (only UnschedulableAndUnresolvable excludes a node). Listing them
      // cost a reason per node: about 33 kB of answer per pod at 420 candidates, which
      // sluice serialised and kube-scheduler decoded into a status per node.
      kept = await this.keepBest(args.Pod, ask, passed);
      rejected.set('not_best', passed.length - kept.length);
    }
    for (const [reason, n] of rejected) this.metrics.filterRejections.inc({ reason }, n);
    if (full) result.Nodes = { items: kept.map((c) => c.node!) };
    else result.NodeNames = kept.map((c) => c.name);

    if (unknown > MAX_UNKNOWN_LISTED) {
      this.log.warn(
        { verb: 'filter', pod: podName(args.Pod), candidates: list.length, unknown },
        `filter named ${unknown} nodes sluice does not know; the first ${MAX_UNKNOWN_LISTED} are listed as unresolvable`,
      );
    }
    const failed = list.length - passed.length;
    if (failed > 0 && passed.length === 0) {
      const sample = Object.values(result.FailedNodes).concat(Object.values(result.FailedAndUnresolvableNodes)).slice(0, 3);
      this.log.info({ verb: 'filter', pod: podName(args.Pod), candidates: list.length, reasons: sample }, 'no node fits the pod');
    } else {
      this.log.debug({ verb: 'filter', pod: podName(args.Pod), candidates: list.length, passed: passed.length, kept: kept.length }, 'filtered');
    }
    return result;
  }

  private misfit(c: Candidate, needs: PodNeeds): PodMisfit | null {
    return podFitsNode(needs, c, this.candidateLookup);
  }

  private readonly candidateLookup: NodeLookup<Candidate> = {
    name: (c) => c.name,
    view: (c, resource) => this.view(c, resource),
    labels: (c) => (c.node ? c.node.metadata?.labels : this.cache.nodeLabels(c.name)),
  };

  private readonly nodeByName: NodeLookup<string> = {
    name: (n) => n,
    view: (n, resource) => this.cache.nodeView(n, resource),
    labels: (n) => this.cache.nodeLabels(n),
  };

  /**
   * The nodes of `passed` (all fit the pod) the pod's policy places it best on, at most
   * filterBest of them, in their request order: ranked by the policy's full-precision
   * score (the one prioritize scales to 0..10), equal scores to the smallest node name
   * (placement/best-nodes.ts; the trace simulator's --filter-best); for a pod bound
   * through HAMi's node lock, nodes with more share binds in flight than the least rank
   * last (prioritize's rule 1).
   */
  private async keepBest(pod: V1Pod, ask: PodAsk, passed: readonly Candidate[]): Promise<Candidate[]> {
    const { policy, main } = this.scoring(pod, ask);
    const mix = this.cache.sizeMix();
    // Prioritize's rule 1 first: nodes with more share binds in flight rank last.
    const locked = this.shares !== undefined && main.shares !== undefined && main.resource === this.cache.shareNames?.resource;
    const least = locked
      ? this.leastInFlight(
          passed,
          passed.map(() => true),
          pod.metadata?.uid ?? '',
        )
      : null;
    const scores: number[] = [];
    for (let i = 0; i < passed.length; i++) {
      if (i > 0 && i % NODES_PER_SLICE === 0) await yieldToLoop();
      const v = this.view(passed[i]!, main.resource);
      // Passed nodes have a view with GPUs (fit checks it); a node deleted since ranks last.
      scores.push(
        v?.gpus && (!least || least[i]) ? policy.score(v as NodeView & { gpus: NonNullable<NodeView['gpus']> }, askOnNode(main, v.gpus), mix) : -Infinity,
      );
    }
    return bestFeasible(
      scores,
      passed.map((c) => c.name),
      this.filterBest,
    ).map((i) => passed[i]!);
  }

  /** The pod's policy and the ask it is scored by: the largest one, with the pod's CPU and
   * memory (the fragmentation policy counts GPUs they strand). A pod asking two GPU
   * resources at once is rare. Call only for a pod that asks GPUs. */
  private scoring(pod: V1Pod, ask: PodAsk): { policy: Policy; main: GpuAsk } {
    const policy = POLICY_BY_NAME[ask.policy ?? this.defaultPolicy];
    const host = podHostRequests(pod);
    const largest = ask.asks.reduce((a, b) => (b.count > a.count ? b : a));
    return { policy, main: { ...largest, cpuMilli: host.cpuMilli, memMiB: host.memMiB } };
  }

  /**
   * Node scores 0..10 for the pod. Order of the nodes that fit, best first:
   *  1. for a pod bound through HAMi's node lock (it asks the share resource and share
   *     binds are on): the nodes with the fewest share binds in flight among those that fit
   *     (cache.shareBindsInFlight: binds taken in and not yet answered by the device
   *     plugin, and share pods ranked first there whose bind has not come); the other
   *     nodes score 0, since a bind there waits for the plugin's Allocate of each one before;
   *  2. the policy's score, scaled to 0..10 over the nodes of rule 1 (at least 1 when rule 1
   *     left a node out, so that kube-scheduler tells the two apart).
   * With nothing in flight rule 1 keeps every node: the scores are the policy's alone, as
   * the trace simulator has them (test/bench/extender-equality.test.ts). The node ranked
   * first is then counted as the pod's pick until its bind comes.
   */
  async prioritize(args: ExtenderArgs): Promise<HostPriority[]> {
    const { list } = this.candidates(args);
    const ask = this.ask(args.Pod); // a malformed pod throws PodRequestError: routes answer 400
    if (ask.asks.length === 0) return list.map((c) => ({ Host: c.name, Score: NEUTRAL_SCORE }));
    const { policy, main } = this.scoring(args.Pod, ask);
    const mix: SizeMix = this.cache.sizeMix();
    const raw: number[] = [];
    const fits: boolean[] = [];
    for (let i = 0; i < list.length; i++) {
      if (i > 0 && i % NODES_PER_SLICE === 0) await yieldToLoop();
      const c = list[i]!;
      const v = this.view(c, main.resource);
      // A share's one-dimensional size depends on the node's GPU memory (placement/shares.ts).
      const a = askOnNode(main, v?.gpus);
      // One ask (the usual case): fit the view in hand rather than look the node up again
      // in misfit; the lookup by a freshly parsed name is most of this loop's cost (bench/).
      const ok = !!v && v.gpus !== undefined && (ask.asks.length === 1 ? fit(v, a) === null : this.misfit(c, filterNeeds(ask.asks)) === null);
      fits.push(ok);
      raw.push(ok ? policy.score(v as NodeView & { gpus: NonNullable<NodeView['gpus']> }, a, mix) : 0);
    }
    const uid = args.Pod.metadata?.uid ?? '';
    const locked = this.shares !== undefined && main.shares !== undefined && main.resource === this.cache.shareNames?.resource;
    const ranked = locked ? this.leastInFlight(list, fits, uid) : fits;
    const scaled = toExtenderScores(
      raw.filter((_, i) => ranked[i]),
      policy.scale,
    );
    const floor = ranked === fits || ranked.every((r, i) => r === fits[i]) ? 0 : 1;
    let j = 0;
    const out = list.map((c, i) => ({ Host: c.name, Score: ranked[i] ? Math.max(floor, scaled[j++]!) : 0 }));
    if (locked) {
      let top = -1;
      for (let i = 0; i < out.length; i++) if (ranked[i] && (top < 0 || out[i]!.Score > out[top]!.Score)) top = i;
      if (top >= 0) this.cache.pickForBind(uid, out[top]!.Host);
    }
    return out;
  }

  /** Rule 1 of prioritize: which fitting nodes have the fewest share binds in flight. */
  private leastInFlight(list: readonly Candidate[], fits: readonly boolean[], uid: string): boolean[] {
    const busy = list.map((c, i) => (fits[i] ? this.cache.shareBindsInFlight(c.name, uid) : Infinity));
    let least = Infinity;
    for (const b of busy) if (b < least) least = b;
    return busy.map((b) => b === least && b !== Infinity);
  }

  /**
   * What the pod named by a bind asks, from the pod as the apiserver has it: the informer's
   * copy, or one read when the informer has not delivered it yet. Never from a filter body:
   * anyone who can reach the extender could have sent that (issue 12). The UID must be the
   * one of the pod of that name, or the bind is refused.
   */
  private async bindRequests(args: ExtenderBindingArgs): Promise<BindAsk | BindRefusal> {
    const pod = `${args.PodNamespace}/${args.PodName}`;
    const known = this.cache.pod(args.PodUID);
    if (known) {
      if (known.namespace !== args.PodNamespace || known.name !== args.PodName) {
        return {
          result: 'rejected',
          error: `pod ${args.PodUID} is ${known.namespace}/${known.name}, not ${pod}; refusing to bind (kube-scheduler sends the UID of the pod it names)`,
        };
      }
      return {
        requests: known.requests,
        shares: known.shares,
        policy: known.annotations['sluice.io/policy'],
        needs: needsOf(known, this.cache.shareNames?.resource),
        labels: known.labels,
        host: { cpuMilli: known.cpuMilli, memMiB: known.memMiB },
      };
    }
    let p: V1Pod;
    try {
      p = await this.binder.readPod(args.PodNamespace, args.PodName);
    } catch (e) {
      return { result: 'api_error', error: `cannot read pod ${pod} before binding it: ${errorText(e)}` };
    }
    if (p.metadata?.uid !== args.PodUID) {
      return {
        result: 'rejected',
        error: `pod ${pod} has UID ${p.metadata?.uid ?? '(none)'} at the apiserver, not ${args.PodUID}; refusing to bind (it was deleted and recreated, or the request is forged)`,
      };
    }
    const labels = p.metadata?.labels ?? {};
    try {
      const names = this.cache.shareNames;
      const asks = podAsk(p, this.cache.resources, names).asks;
      const requests = asks.map((a) => ({ resource: a.resource, count: a.count }));
      const shares = names && requests.some((r) => r.resource === names.resource) ? podShareAsks(p, names) : null;
      const rec = podRecord(p, args.PodUID, this.cache.resources, Date.now(), names ?? undefined);
      return {
        requests,
        shares,
        policy: p.metadata?.annotations?.['sluice.io/policy'],
        needs: { ...needsOf(rec), asks },
        labels,
        host: { cpuMilli: rec.cpuMilli, memMiB: rec.memMiB },
      };
    } catch (e) {
      if (!(e instanceof PodRequestError)) throw e;
      return { result: 'rejected', error: `pod ${pod}: ${e.message}`, labels };
    }
  }

  /**
   * For a share pod bound to a node whose GPUs HAMi's plugin splits: how the assume step
   * places its containers (each on GPUs the pod's policy chooses, placement/shares.ts), and
   * how the GPUs of the asking containers map back onto all containers. null when the node
   * has no shared GPUs (the pod is then bound as whole GPUs).
   */
  private sharePlacer(
    shares: ReadonlyArray<ContainerShare | null>,
    policyName: string | undefined,
    node: string,
    pod: { uid: string; cpuMilli: number; memMiB: number },
  ) {
    const resource = this.cache.shareNames!.resource;
    const view = this.cache.nodeViewFor(node, resource, pod.uid);
    if (!view?.gpus?.devices) return null;
    const policy = POLICY_BY_NAME[(policyName && policyName in POLICY_BY_NAME ? policyName : this.defaultPolicy) as PolicyName];
    const asks = shares.filter((x): x is ContainerShare => x !== null);
    // The node's free CPU, memory and model and the pod's CPU and memory, as prioritize
    // scored the node: the GPU chosen is the one that score was for.
    const host = { cpuFreeMilli: view.cpuFreeMilli, memFreeMiB: view.memFreeMiB, product: view.product };
    const pick = policyPick(policy, this.cache.sizeMix(), resource, { host, cpuMilli: pod.cpuMilli, memMiB: pod.memMiB });
    return {
      place: (devices: Parameters<typeof placeContainers>[0]) => {
        const placed = placeContainers(devices, asks, pick);
        return 'misfit' in placed ? placed : { uses: placed.uses.flat() };
      },
      perContainer: (uses: readonly DeviceUse[]): DeviceUse[][] => {
        let k = 0;
        return shares.map((x) => (x === null ? [] : uses.slice(k, (k += x.count))));
      },
    };
  }

  /** Records a failed bind of a pod known to be the one named (store/bind-failures.ts). */
  private recordFailure(args: ExtenderBindingArgs, labels: Readonly<Record<string, string>>, cause: BindFailureCause, reason: string): void {
    this.bindFailures?.recordBindFailure({
      at: new Date(),
      namespace: args.PodNamespace,
      pod: args.PodName,
      uid: args.PodUID,
      job: labels[LABEL_JOB] ?? '',
      queue: labels[LABEL_QUEUE] ?? '',
      node: args.Node,
      cause,
      reason,
    });
  }

  async bind(args: ExtenderBindingArgs): Promise<ExtenderBindingResult> {
    const pod = `${args.PodNamespace}/${args.PodName}`;
    const found = await this.bindRequests(args);
    if ('error' in found) {
      this.metrics.binds.inc({ result: found.result });
      this.log.info({ verb: 'bind', pod, node: args.Node, reason: found.error }, 'bind refused');
      if (found.labels) this.recordFailure(args, found.labels, found.result, found.error);
      return { Error: found.error };
    }
    const requests = found.requests;
    // Everything filter checks, from the real pod: a bind needs no filter before it.
    const misfit = podFitsNode(found.needs, args.Node, { ...this.nodeByName, view: (n, resource) => this.cache.nodeViewFor(n, resource, args.PodUID) });
    if (misfit) {
      this.metrics.binds.inc({ result: 'rejected' });
      const reason = misfit.kind === 'unknown_node' ? `node ${args.Node} is ${misfit.reason}` : misfit.reason;
      this.log.info({ verb: 'bind', pod, node: args.Node, reason }, 'bind refused');
      this.recordFailure(args, found.labels, misfit.kind === 'unknown_node' ? 'node_gone' : 'rejected', reason);
      return { Error: reason };
    }
    const shared = this.shares && found.shares ? this.sharePlacer(found.shares, found.policy, args.Node, { uid: args.PodUID, ...found.host }) : null;
    const assumed = this.cache.assume(args.PodUID, args.Node, requests, shared?.place);
    if (!assumed.ok) {
      this.metrics.binds.inc({ result: 'rejected' });
      this.log.info({ verb: 'bind', pod, node: args.Node, reason: assumed.reason }, 'bind refused');
      this.recordFailure(args, found.labels, 'rejected', assumed.reason);
      return { Error: assumed.reason };
    }
    this.metrics.assumedPods.set(this.cache.assumedCount);
    try {
      const post = (): Promise<void> => this.binder.bind(args.PodNamespace, args.PodName, args.PodUID, args.Node);
      if (shared && assumed.uses) {
        const containers = shared.perContainer(assumed.uses);
        await bindShares(this.shares!.locks, this.shares!.api, post, { namespace: args.PodNamespace, name: args.PodName, node: args.Node }, containers);
      } else {
        await post();
      }
    } catch (e) {
      this.cache.forget(args.PodUID);
      this.metrics.assumedPods.set(this.cache.assumedCount);
      this.metrics.binds.inc({ result: 'api_error' });
      const reason = errorText(e);
      this.log.warn({ verb: 'bind', pod, node: args.Node, reason }, 'bind failed at the apiserver; assumption rolled back');
      this.recordFailure(args, found.labels, 'api_error', reason);
      return { Error: reason };
    }
    this.metrics.binds.inc({ result: 'bound' });
    // Debug, not info: one log write per bind was 4 % of sluice's CPU in a scheduling storm
    // (bench/cluster); binds are counted in sluice_binds_total, refusals and failures
    // above are logged at info and warn.
    if (this.log.isLevelEnabled('debug'))
      this.log.debug(
        { verb: 'bind', pod, node: args.Node, reason: `bound with ${requests.map((r) => `${r.count} ${r.resource}`).join(', ') || 'no GPUs'}` },
        'pod bound',
      );
    return { Error: '' };
  }
}

/** What a bind needs of the pod: GPU counts, per-container shares, the policy it names,
 * what filter would check (placement/pod-fits-node.ts), and its labels (job, queue). */
interface BindAsk {
  requests: readonly ResourceAmount[];
  shares: ReadonlyArray<ContainerShare | null> | null;
  policy: string | undefined;
  needs: PodNeeds;
  labels: Readonly<Record<string, string>>;
  /** CPU and memory the pod requests, as kube-scheduler counts them. */
  host: { cpuMilli: number; memMiB: number };
}

/** A bind refused before its checks; `labels` only once the pod is known to be the one
 * named (its UID matched): only then is the failure recorded, so a forged request cannot
 * write another namespace's timeline. */
interface BindRefusal {
  error: string;
  result: 'rejected' | 'api_error';
  labels?: Readonly<Record<string, string>>;
}

const NO_SELECTOR: Readonly<Record<string, string>> = Object.freeze({});
/** Filter's needs of a pod: its asks only, since kube-scheduler's NodeAffinity filter ran before the extender's. */
const filterNeeds = (asks: readonly GpuAsk[]): PodNeeds => ({ asks, nodeSelector: NO_SELECTOR, affinityTerms: null });

export function podName(p: V1Pod | undefined): string {
  return `${p?.metadata?.namespace ?? '?'}/${p?.metadata?.name ?? p?.metadata?.generateName ?? '?'}`;
}

/** The message of an apiserver error (a Status object in the body), or the error's text. */
export function errorText(e: unknown): string {
  if (typeof e === 'object' && e !== null) {
    const o = e as { body?: unknown; message?: unknown; code?: unknown };
    let body = o.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        /* plain text body */
      }
    }
    if (typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string') {
      return (body as { message: string }).message;
    }
    if (typeof body === 'string' && body) return body;
    if (typeof o.message === 'string') return o.message;
  }
  return String(e);
}
