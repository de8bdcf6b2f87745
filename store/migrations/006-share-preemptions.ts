// GPU shares (docs/gpu-sharing.md): a preemption of best-effort GPU shares frees and takes
// back fractions of a GPU (two pods of a quarter GPU: 0.5), so the two GPU columns of
// preemptions hold fractions; a share victim in the victims list also carries its
// fraction as "share" (its "gpus" stays the devices its job record counts). double
// precision reads back as a JavaScript number.
export const sql = `
ALTER TABLE preemptions ALTER COLUMN gpus_freed TYPE double precision;
ALTER TABLE preemptions ALTER COLUMN gpus_taken_back TYPE double precision;
`;
