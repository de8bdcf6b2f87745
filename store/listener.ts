// A LISTEN connection that stays up: a dedicated pg Client (not from the pool, whose
// connections come and go) that reconnects with exponential backoff whenever it drops.
// Notifications sent while it was down are lost, so `onConnected` runs on every
// (re)connect and the owner drops whatever it cached.
//
// A path can also go silent without FIN or RST (NAT idle timeout, partition): the socket
// looks open and NOTIFYs are simply lost. So the listener runs SELECT 1 every heartbeatMs;
// no answer within heartbeatTimeoutMs counts as a dropped connection (cache distrusted,
// reconnect), the same as an error.
import pg from 'pg';
import type { Logger } from '../observability/logger.js';

export interface ListenerOptions {
  clientConfig: pg.ClientConfig;
  channel: string;
  log: Logger;
  onNotify: (payload: string) => void;
  onConnected: () => void;
  onDisconnected: () => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Interval of the SELECT 1 heartbeat (default 15 s). */
  heartbeatMs?: number;
  /** How long the heartbeat may take (default 5 s). */
  heartbeatTimeoutMs?: number;
}

export class NotifyListener {
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private stopped = true;
  private backoffMs: number;
  private failures = 0;
  connected = false;

  constructor(private readonly opts: ListenerOptions) {
    this.backoffMs = opts.minBackoffMs ?? 100;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopHeartbeat();
    const c = this.client;
    this.client = null;
    this.setConnected(false);
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client(this.opts.clientConfig);
    this.client = client;
    let dropped = false;
    const drop = (err?: Error): void => {
      if (dropped) return;
      dropped = true;
      if (this.client === client) {
        this.client = null;
        this.stopHeartbeat();
      }
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      this.setConnected(false);
      this.retry(err);
    };
    client.on('error', (err) => drop(err));
    client.on('end', () => drop(new Error('connection closed')));
    client.on('notification', (n) => {
      if (n.channel === this.opts.channel && n.payload !== undefined) this.opts.onNotify(n.payload);
    });
    try {
      await client.connect();
      // Channel names are identifiers; the schema part is validated by the config pattern.
      await client.query(`LISTEN "${this.opts.channel}"`);
    } catch (e) {
      drop(e as Error);
      return;
    }
    if (this.stopped || dropped) {
      await client.end().catch(() => undefined);
      return;
    }
    if (this.failures > 0)
      this.opts.log.info({ channel: this.opts.channel, after: this.failures }, 'queue change listener reconnected to Postgres; queue cache cleared');
    this.failures = 0;
    this.backoffMs = this.opts.minBackoffMs ?? 100;
    this.setConnected(true);
    this.startHeartbeat(client, drop);
  }

  private startHeartbeat(client: pg.Client, drop: (err?: Error) => void): void {
    const every = this.opts.heartbeatMs ?? 15000;
    const within = this.opts.heartbeatTimeoutMs ?? 5000;
    let busy = false;
    this.heartbeat = setInterval(() => {
      if (busy) return;
      busy = true;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer to the heartbeat within ${within} ms`)), within);
        timer.unref();
      });
      // On a timeout, drop() ends the client; with the query still active pg destroys the socket.
      Promise.race([client.query('SELECT 1'), timeout])
        .then(
          () => undefined,
          (e: unknown) => drop(e as Error),
        )
        .finally(() => {
          clearTimeout(timer);
          busy = false;
        });
    }, every);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private retry(err?: Error): void {
    if (this.stopped) return;
    this.failures++;
    // One warning per outage, not one per attempt.
    if (this.failures === 1) {
      this.opts.log.warn(
        { channel: this.opts.channel, err: err?.message },
        `queue change listener lost Postgres (${err?.message ?? 'unknown error'}); reconnecting with backoff, queue reads fall back to the cache`,
      );
    }
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 5000);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
    this.timer.unref();
  }

  private setConnected(up: boolean): void {
    if (this.connected === up) return;
    this.connected = up;
    if (up) this.opts.onConnected();
    else this.opts.onDisconnected();
  }
}
