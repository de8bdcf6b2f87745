// The audit sink: every admission decision becomes a row in admission_decisions.
// The implementation (store/audit-writer.ts) buffers and inserts in the background so
// the webhook never waits on Postgres.

export interface AdmissionRecord {
  /** AdmissionReview request uid. */
  uid: string;
  /** CREATE, UPDATE, ... */
  operation: string;
  namespace: string;
  pod: string;
  /** Requesting user (userInfo.username). */
  user: string;
  allowed: boolean;
  /** HTTP-style code of the answer (200 when allowed). */
  code: number;
  /** Why: the deny message, or a short note for an allow. */
  reason: string;
  dryRun: boolean;
}

export interface AuditSink {
  /** Never throws, never blocks: the record is queued and written later. */
  recordAdmission(r: AdmissionRecord): void;
}
