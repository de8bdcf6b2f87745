// Waiting for something with an upper bound, for shutdown steps whose calls have no
// timeout of their own (client-node's requests): a stalled apiserver must not hold them up.

/** True when `p` settled (resolved or rejected) within `ms`; false when the time ran out. */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
