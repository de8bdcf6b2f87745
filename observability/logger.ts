// Structured JSON logs (pino). Decisions log one line each with pod, node and reason.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { app: 'sluice' }, timestamp: pino.stdTimeFunctions.isoTime },
    // Asynchronous stdout: process.stdout writes synchronously to files and pipes, which
    // put one blocking write per decision on the webhook and bind hot paths. pino flushes
    // what is buffered when the process exits.
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
