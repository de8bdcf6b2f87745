// The ordered list of schema migrations. Append only: never edit or renumber one that
// has shipped; add NNN-what.ts and list it here.
import { sql as m001 } from './001-initial.js';
import { sql as m002 } from './002-queue-manager.js';
import { sql as m003 } from './003-preemption.js';
import { sql as m004 } from './004-eta.js';
import { sql as m005 } from './005-bind-failures.js';
import { sql as m006 } from './006-share-preemptions.js';
import { sql as m007 } from './007-share-jobs.js';

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  { id: 1, name: 'initial', sql: m001 },
  { id: 2, name: 'queue-manager', sql: m002 },
  { id: 3, name: 'preemption', sql: m003 },
  { id: 4, name: 'eta', sql: m004 },
  { id: 5, name: 'bind-failures', sql: m005 },
  { id: 6, name: 'share-preemptions', sql: m006 },
  { id: 7, name: 'share-jobs', sql: m007 },
];
