// GPU shares (docs/gpu-sharing.md): a job record counts the GPU-equivalents its pods hold
// (a pod of a quarter GPU is 0.25, four of them 1), as quotas and the queue's usage count
// them, so the two GPU columns of jobs hold fractions. Whole-GPU jobs keep their counts;
// the CHECK (>= 0) constraints stay. double precision reads back as a JavaScript number.
export const sql = `
ALTER TABLE jobs ALTER COLUMN gpus_per_pod TYPE double precision;
ALTER TABLE jobs ALTER COLUMN gpus TYPE double precision;
`;
