// GPU model matching. A pod names accepted models (annotation sluice.io/gpu-model,
// comma separated) either as full products ("NVIDIA-A100-SXM4-80GB") or short aliases
// ("a100", "a100-80gb", "h100"). An alias matches a product when its tokens appear, in
// order and contiguous, among the product's tokens: "a100" matches
// "NVIDIA-A100-SXM4-80GB" but not "NVIDIA-A10"; "a100-80gb" does not match
// "NVIDIA-A100-SXM4-40GB".

const tokens = (s: string): string[] =>
  s
    .toLowerCase()
    .split(/[\s_\-/]+/)
    .filter(Boolean);

export function parseModelList(annotation: string | undefined): string[] {
  if (!annotation) return [];
  return annotation
    .split(/[,|]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Answers already worked out, by product and alias: the extender asks the same few pairs
 * for every node of every request, and tokenising them each time was ~2.5 % of sluice's CPU
 * in a scheduling run (bench/cluster). Aliases come from pods, so the memo is bounded. */
// Two levels, not one key built from both: a concatenated key is a new string to hash on
// every call, the product and alias strings are the same instances call after call.
const memo = new Map<string, Map<string, boolean>>();
let memoSize = 0;
const MEMO_MAX = 10_000;

export function modelMatches(product: string, alias: string): boolean {
  let byAlias = memo.get(product);
  if (!byAlias) memo.set(product, (byAlias = new Map()));
  let m = byAlias.get(alias);
  if (m === undefined) {
    if (memoSize >= MEMO_MAX) {
      memo.clear();
      memoSize = 0;
      memo.set(product, byAlias);
      byAlias.clear();
    }
    byAlias.set(alias, (m = matches(product, alias)));
    memoSize++;
  }
  return m;
}

function matches(product: string, alias: string): boolean {
  const p = tokens(product);
  const a = tokens(alias);
  if (a.length === 0 || p.length === 0) return false;
  outer: for (let i = 0; i + a.length <= p.length; i++) {
    for (let j = 0; j < a.length; j++) if (p[i + j] !== a[j]) continue outer;
    return true;
  }
  return false;
}

/** True when the product is accepted by any of the aliases (no aliases = any model). */
export function modelAccepted(product: string, aliases: readonly string[]): boolean {
  if (aliases.length === 0) return true;
  for (const a of aliases) if (modelMatches(product, a)) return true;
  return false;
}
