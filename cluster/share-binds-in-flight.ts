// Share binds in flight per node (HAMi's protocol): a share bind holds its node's lock from
// the bind until the device plugin answers, so the next share bind to that node waits for
// it. Counted per node:
//   - binds: share binds taken in and not answered yet (the cache says which node each is
//     on, from its assume ledger and the pod's bind phase);
//   - picks: share pods prioritize ranked the node first for, whose bind has not come yet,
//     each for BIND_PICK_TTL_MS at most (kube-scheduler binds right after its cycle).
// prioritize reads the count to spread a burst of share binds over nodes
// (scheduler/extender.ts). Pure bookkeeping: the clock is passed in.

/** How long a node prioritize ranked first for a share pod counts that pod as in flight
 * there, if its bind does not come: kube-scheduler binds right after its scheduling cycle,
 * so a pick this old was not acted on. */
export const BIND_PICK_TTL_MS = 5_000;

export class ShareBindsInFlight {
  /** Node of each share bind in flight, by pod UID, and the binds of each node. */
  private readonly bindOf = new Map<string, string>();
  private readonly bindsOn = new Map<string, Set<string>>();
  /** Node of each pick, by pod UID, and each node's picks: UID -> until (ms). */
  private readonly pickOf = new Map<string, string>();
  private readonly picksOn = new Map<string, Map<string, number>>();

  /** Files the pod's share bind under `node`, or under none (null): answered, or gone. */
  setBind(uid: string, node: string | null): void {
    const was = this.bindOf.get(uid);
    if (was === node) return;
    if (was !== undefined) {
      this.bindsOn.get(was)?.delete(uid);
      this.bindOf.delete(uid);
    }
    if (node !== null) {
      let s = this.bindsOn.get(node);
      if (!s) this.bindsOn.set(node, (s = new Set()));
      s.add(uid);
      this.bindOf.set(uid, node);
    }
  }

  /** Counts pod `uid` as in flight to `node` until `untilMs` (or its bind, or dropPick). */
  pick(uid: string, node: string, untilMs: number): void {
    this.dropPick(uid);
    let m = this.picksOn.get(node);
    if (!m) this.picksOn.set(node, (m = new Map()));
    m.set(uid, untilMs);
    this.pickOf.set(uid, node);
  }

  dropPick(uid: string): void {
    const node = this.pickOf.get(uid);
    if (node === undefined) return;
    this.pickOf.delete(uid);
    this.picksOn.get(node)?.delete(uid);
  }

  clear(): void {
    this.bindOf.clear();
    this.bindsOn.clear();
    this.pickOf.clear();
    this.picksOn.clear();
  }

  /** The node is gone from the cache: what was filed under it no longer counts. */
  forgetNode(node: string): void {
    for (const uid of this.bindsOn.get(node) ?? []) this.bindOf.delete(uid);
    for (const uid of this.picksOn.get(node)?.keys() ?? []) this.pickOf.delete(uid);
    this.bindsOn.delete(node);
    this.picksOn.delete(node);
  }

  /** Binds and live picks on the node at `nowMs`, pod `except` not counted; expired picks go. */
  count(node: string, nowMs: number, except = ''): number {
    const binds = this.bindsOn.get(node);
    const picks = this.picksOn.get(node);
    let n = binds ? binds.size - (binds.has(except) ? 1 : 0) : 0;
    for (const [uid, until] of picks ?? []) {
      if (until <= nowMs) this.dropPick(uid);
      else if (uid !== except) n++;
    }
    return n;
  }
}
