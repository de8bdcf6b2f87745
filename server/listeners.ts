// How the two listeners treat connections, independent of what they serve: TLS (ECDHE-only
// suites on 1.2, optional client certificates), body limits per route group, and the
// timeouts and connection cap that keep slow or idle clients from holding sockets (issue 12).
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { TLS12_CIPHERS } from '../certs/reload.js';
import type { SecureContextTarget } from '../certs/reload.js';
import type { SluiceConfig } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import type { Logger } from '../observability/logger.js';

export type RouteGroup = 'extender' | 'webhooks' | 'api';

/**
 * The route group of a route, for body limits and client-certificate checks. `route` is the
 * route's URL pattern as registered ('/scheduler/bind', '/api/v1/queues/:name'), never a
 * request's raw URL: the router decodes percent-encoding and drops the query, so
 * '/%73cheduler/bind' runs /scheduler/bind while its raw URL starts with neither prefix.
 */
export function routeGroup(route: string): RouteGroup {
  if (route.startsWith('/scheduler/')) return 'extender';
  if (route.startsWith('/webhooks/')) return 'webhooks';
  return 'api';
}

/** Node's own checks of requestTimeout/headersTimeout run on this interval (default 30 s). */
const CONNECTION_CHECK_MS = 1000;

type ConnectionOptions = Pick<FastifyServerOptions, 'requestTimeout' | 'connectionTimeout' | 'keepAliveTimeout' | 'maxRequestsPerSocket'>;

/** Fastify options of either listener: timeouts from `connections`. */
export function connectionOptions(config: SluiceConfig): ConnectionOptions {
  const c = config.connections;
  return {
    requestTimeout: c.requestTimeoutSeconds * 1000,
    connectionTimeout: c.idleTimeoutSeconds * 1000,
    keepAliveTimeout: c.keepAliveTimeoutSeconds * 1000,
    maxRequestsPerSocket: c.maxRequestsPerSocket,
  };
}

/** Options of Node's http(s).createServer that fastify does not set itself. */
export function nodeServerOptions(config: SluiceConfig): { headersTimeout: number; connectionsCheckingInterval: number } {
  const headers = config.connections.headersTimeoutSeconds * 1000;
  const request = config.connections.requestTimeoutSeconds * 1000;
  // Node requires headersTimeout <= requestTimeout (when the latter is set).
  return { headersTimeout: request > 0 ? Math.min(headers, request) : headers, connectionsCheckingInterval: CONNECTION_CHECK_MS };
}

export interface ApiTls {
  cert: Buffer;
  key: Buffer;
  minVersion: 'TLSv1.2';
  ciphers: string;
  handshakeTimeout: number;
  requestCert: boolean;
  rejectUnauthorized: false;
  ca?: Buffer;
}

/**
 * TLS options of the API listener. Client certificates are requested (never required at
 * the handshake: the admin API's bearer tokens must keep working) when clientCaFile is set;
 * which route groups insist on one is checked per request by requireClientCerts().
 */
export function apiTlsOptions(config: SluiceConfig): ApiTls {
  const h = config.https;
  let ca: Buffer | undefined;
  try {
    ca = h.clientCaFile ? readFileSync(h.clientCaFile) : undefined;
  } catch (e) {
    throw new ConfigError(`https.clientCaFile ${h.clientCaFile} cannot be read (${(e as Error).message}); point it at the PEM bundle of the client CA`);
  }
  return {
    cert: readFileSync(h.certFile),
    key: readFileSync(h.keyFile),
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
    handshakeTimeout: config.connections.headersTimeoutSeconds * 1000,
    requestCert: ca !== undefined,
    rejectUnauthorized: false,
    ...(ca ? { ca } : {}),
  };
}

/** Says at startup what the client-certificate settings allow, or refuses ones that cannot work. */
export function checkClientCertConfig(config: SluiceConfig, tls: boolean, log: Logger): void {
  const h = config.https;
  const required = h.requireClientCert;
  if (required.length > 0 && !tls) {
    throw new ConfigError(
      `https.requireClientCert (${required.join(', ')}) needs HTTPS; set https.certFile and https.keyFile, or empty https.requireClientCert`,
    );
  }
  if (required.length > 0 && !h.clientCaFile) {
    throw new ConfigError(
      `https.requireClientCert (${required.join(', ')}) needs https.clientCaFile, the CA bundle that signed the callers' client certificates`,
    );
  }
  const open = (['extender', 'webhooks'] as const).filter((g) => !required.includes(g));
  if (open.length > 0) {
    log.warn(
      { unauthenticated: open },
      `the ${open.join(' and ')} route${open.length > 1 ? 's accept' : ' accepts'} callers without a client certificate: anyone who can reach the API listener can call ${open.length > 1 ? 'them' : 'it'}; set https.clientCaFile and https.requireClientCert (on in the Helm chart; kustomize: components/client-auth), and a NetworkPolicy (components/network-policy, or the chart's networkPolicy.enabled)`,
    );
  }
}

/**
 * Per-request check: route groups in https.requireClientCert need a certificate the client
 * CA verified. Decided on the route the router matched (the one whose handler will run),
 * so every spelling of a path that reaches a handler is checked alike; a request no route
 * matches runs no handler (404).
 */
export function requireClientCerts(api: FastifyInstance, config: SluiceConfig): void {
  const required = new Set<RouteGroup>(config.https.requireClientCert);
  if (required.size === 0) return;
  // Connections whose verified certificate was seen: the answer holds for the connection.
  const verified = new WeakSet<TLSSocket>();
  api.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url;
    if (route === undefined || !required.has(routeGroup(route))) return;
    const socket = req.raw.socket as TLSSocket;
    if (verified.has(socket)) return;
    const presented = Object.keys(socket.getPeerCertificate?.() ?? {}).length > 0;
    // `authorized` alone is not enough: Node counts a resumed TLS 1.3 session that never
    // carried a certificate as authorized (it looks like a PSK), so a client could get a
    // session ticket without a certificate and resume it. A certificate must be present.
    if (socket.authorized === true && presented) {
      verified.add(socket);
      return;
    }
    const why = presented
      ? `the certificate was not accepted: ${String(socket.authorizationError ?? 'unknown reason')}`
      : 'no client certificate was presented';
    const message = `this route needs a client certificate signed by the CA in https.clientCaFile (${why}); configure the caller's client certificate`;
    // In the error shape of the route group: the admin API's, or the extender's and webhooks'.
    return reply.code(401).send(routeGroup(route) === 'api' ? { statusCode: 401, error: 'Unauthorized', message } : { error: message });
  });
}

/** Per-route body limits (a route that sets its own keeps it). */
export function limitBodies(api: FastifyInstance, config: SluiceConfig): void {
  const l = config.limits;
  api.addHook('onRoute', (route) => {
    if (route.bodyLimit !== undefined) return;
    const group = routeGroup(route.url);
    if (group === 'extender') route.bodyLimit = route.url.endsWith('/bind') ? l.bindBodyBytes : l.extenderBodyBytes;
    else if (group === 'webhooks') route.bodyLimit = l.webhookBodyBytes;
    else route.bodyLimit = l.apiBodyBytes;
  });
}

/**
 * What a certificate rotation swaps in keeps the listener's TLS policy: the ECDHE-only
 * suites and the client CA (setSecureContext replaces the whole context).
 */
export function keepTlsPolicy(server: SecureContextTarget, tls: ApiTls): SecureContextTarget {
  return {
    setSecureContext: (options) => server.setSecureContext({ ...options, ciphers: TLS12_CIPHERS, ...(tls.ca ? { ca: tls.ca } : {}) }),
  };
}
