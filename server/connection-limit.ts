// Connections per client address (issue 22, defect 3): one client holding slow or idle
// connections filled a listener's whole cap (connections.maxConnections), so kube-apiserver
// could not open a connection to the webhooks and the kubelet's /healthz probe failed. Each
// address may hold at most `perClient` connections; the ones past that are closed at once,
// before the TLS handshake, leaving the rest of the cap for everyone else.
import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from '../observability/logger.js';

/** The counting, apart from sockets. */
export class PerClientCount {
  private readonly open = new Map<string, number>();

  constructor(readonly perClient: number) {}

  /** Counts a new connection from `address`, or says no (nothing counted) when it holds perClient already. */
  admit(address: string): boolean {
    const n = this.open.get(address) ?? 0;
    if (n >= this.perClient) return false;
    this.open.set(address, n + 1);
    return true;
  }

  release(address: string): void {
    const n = (this.open.get(address) ?? 0) - 1;
    if (n > 0) this.open.set(address, n);
    else this.open.delete(address);
  }

  holding(address: string): number {
    return this.open.get(address) ?? 0;
  }
}

/** '::ffff:10.0.0.1' and '10.0.0.1' are one client. */
export function clientAddress(socket: Pick<Socket, 'remoteAddress'>): string {
  const a = socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export interface PerClientLimitOptions {
  listener: 'api' | 'ops';
  perClient: number;
  log: Logger;
  onRefused(listener: 'api' | 'ops'): void;
}

/** Applies the per-address cap to a listener (0 = no per-address cap). */
export function limitPerClient(server: Server, o: PerClientLimitOptions): void {
  if (o.perClient <= 0) return;
  const count = new PerClientCount(o.perClient);
  // One log line per address while it stays at the cap.
  const logged = new Set<string>();
  // Before the listener's own 'connection' handler (the TLS wrap, the HTTP parser).
  server.prependListener('connection', (socket: Socket) => {
    const address = clientAddress(socket);
    if (!count.admit(address)) {
      o.onRefused(o.listener);
      if (!logged.has(address)) {
        logged.add(address);
        o.log.warn(
          { client: address, listener: o.listener, perClient: o.perClient },
          `client ${address} holds ${o.perClient} connections to the ${o.listener} listener (connections.${o.listener === 'api' ? 'maxConnectionsPerClient' : 'opsMaxConnectionsPerClient'}); closing its further connections at once until it closes some`,
        );
      }
      socket.destroy();
      return;
    }
    socket.once('close', () => {
      count.release(address);
      if (count.holding(address) === 0) logged.delete(address);
    });
  });
}
