// Which candidate nodes a filter keeps when it answers only the k best-placed ones
// (scheduler.filterBest; the trace simulator's --filter-best). Pure: scores in, indices out.
//
// Rank, best first:
//   1. the higher policy score (the policy's own full-precision score, not the 0..10
//      integer prioritize answers);
//   2. equal scores: the smaller node name (JavaScript string order), which fills nodes
//      in a fixed order and keeps the rest whole (the FGD artifact's scheduler takes the
//      smallest name too; the trace simulator's --ties name is this rule).

/** Is candidate a ranked before candidate b. */
const before = (scores: readonly number[], names: readonly string[], a: number, b: number): boolean =>
  scores[a]! > scores[b]! || (scores[a] === scores[b] && names[a]! < names[b]!);

/** Indices of the `k` best candidates (rank above), in ascending index order (the order
 * the candidates came in). All of them when k >= their number; none when k <= 0. */
export function bestFeasible(scores: readonly number[], names: readonly string[], k: number): number[] {
  const n = scores.length;
  if (names.length !== n) throw new Error(`bestFeasible: ${n} scores for ${names.length} names`);
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  if (k <= 0) return [];
  let top: number[];
  if (k <= 32) {
    // Insertion into a short ranked list: O(n k) with no allocation per candidate.
    top = [];
    for (let i = 0; i < n; i++) {
      if (top.length === k && !before(scores, names, i, top[k - 1]!)) continue;
      let at = top.length === k ? k - 1 : top.length;
      while (at > 0 && before(scores, names, i, top[at - 1]!)) {
        top[at] = top[at - 1]!;
        at--;
      }
      top[at] = i;
    }
  } else {
    top = Array.from({ length: n }, (_, i) => i)
      .sort((a, b) => (before(scores, names, a, b) ? -1 : before(scores, names, b, a) ? 1 : 0))
      .slice(0, k);
  }
  return top.sort((a, b) => a - b);
}
