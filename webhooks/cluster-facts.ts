// ClusterFacts over the live cluster cache and namespace store. The GPU facts are
// derived from ClusterCache.inventory() at most once per second (not per request):
// products and node sizes change on the scale of minutes.
import type { ClusterCache } from '../cluster/cache.js';
import { modelAccepted } from '../placement/gpu-model.js';
import type { NamespaceStore } from '../cluster/namespaces.js';
import type { PriorityClassFacts, PriorityClassStore } from '../cluster/priority-classes.js';
import type { ClusterFacts } from './policy.js';

interface NodeSize {
  product: string;
  total: number;
}

const REFRESH_MS = 1000;
const NONE: readonly string[] = Object.freeze([]);

export class CacheFacts implements ClusterFacts {
  private at = -Infinity;
  private productsBy = new Map<string, readonly string[]>();
  private sizesBy = new Map<string, NodeSize[]>();

  constructor(
    private readonly cache: ClusterCache,
    private readonly namespaces: NamespaceStore,
    private readonly now: () => number = Date.now,
    private readonly priorityClasses: PriorityClassStore | null = null,
  ) {}

  priorityClass(name: string): PriorityClassFacts | null | undefined {
    return this.priorityClasses?.get(name);
  }

  namespaceLabels(namespace: string): Readonly<Record<string, string>> | undefined {
    return this.namespaces.get(namespace);
  }

  lookupNamespace(namespace: string): Promise<Readonly<Record<string, string>> | undefined> {
    return this.namespaces.lookup(namespace);
  }

  products(resource: string): readonly string[] {
    this.refresh();
    return this.productsBy.get(resource) ?? NONE;
  }

  largestNode(resource: string, models: readonly string[]): number | null {
    this.refresh();
    const sizes = this.sizesBy.get(resource);
    if (!sizes || sizes.length === 0) return null;
    let max = 0;
    for (const s of sizes) if (s.total > max && modelAccepted(s.product, models)) max = s.total;
    return max;
  }

  largestSharedGpu(): { node: string; index: number; memMiB: number; cores: number } | null {
    this.refresh();
    return this.largestShared;
  }

  private largestShared: { node: string; index: number; memMiB: number; cores: number } | null = null;

  sharedGpuSizes(): readonly number[] {
    return this.cache.sharedGpuSizes();
  }

  private refresh(): void {
    const now = this.now();
    if (now - this.at < REFRESH_MS) return;
    this.at = now;
    const products = new Map<string, Set<string>>();
    const sizes = new Map<string, NodeSize[]>();
    let largest: CacheFacts['largestShared'] = null;
    for (const n of this.cache.inventory()) {
      for (const g of n.gpus ?? []) {
        if (!largest || g.memMiB > largest.memMiB || (g.memMiB === largest.memMiB && g.cores > largest.cores))
          largest = { node: n.name, index: g.index, memMiB: g.memMiB, cores: g.cores };
      }
      if (n.product) {
        let set = products.get(n.resource);
        if (!set) products.set(n.resource, (set = new Set()));
        set.add(n.product);
      }
      let list = sizes.get(n.resource);
      if (!list) sizes.set(n.resource, (list = []));
      list.push({ product: n.product, total: n.total });
    }
    this.productsBy = new Map([...products].map(([r, s]) => [r, [...s].sort()]));
    this.sizesBy = sizes;
    this.largestShared = largest;
  }
}
