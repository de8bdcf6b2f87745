// HTTP face of the admission webhooks: POST /webhooks/mutate and /webhooks/validate
// (AdmissionReview admission.k8s.io/v1). The route schema checks the envelope; a body
// that is not an AdmissionReview gets a 400 with the reason, anything with a request uid
// gets a well-formed AdmissionReview answer.
import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../observability/metrics.js';
import { admissionReviewResponseSchema, admissionReviewSchema, type AdmissionReview } from './admission.js';
import type { AdmissionHandler } from './handler.js';

export interface WebhookRoutesOptions {
  handler: AdmissionHandler;
  metrics: Metrics;
}

const HINT = 'send an admission.k8s.io/v1 AdmissionReview with request.uid (kube-apiserver does)';

export const webhookRoutes: FastifyPluginAsync<WebhookRoutesOptions> = async (app, { handler, metrics }) => {
  app.setErrorHandler((err, req, reply) => {
    const webhook = req.routeOptions.url === '/webhooks/validate' ? 'validate' : 'mutate';
    const e = err as { validation?: unknown; statusCode?: number; message: string };
    if (e.validation || (e.statusCode && e.statusCode < 500)) {
      metrics.webhookRequests.inc({ webhook, outcome: 'bad_request' });
      const why = e.validation ? `body is not an AdmissionReview (${e.message})` : e.message;
      return reply.code(e.statusCode && e.statusCode !== 500 ? e.statusCode : 400).send({ error: `${why}; ${HINT}` });
    }
    metrics.webhookRequests.inc({ webhook, outcome: 'error' });
    req.log.error({ err }, 'webhook request failed');
    return reply.code(500).send({ error: e.message });
  });

  const schema = { body: admissionReviewSchema, response: { 200: admissionReviewResponseSchema } };
  app.post('/webhooks/mutate', { schema }, async (req) => handler.mutate((req.body as AdmissionReview).request));
  app.post('/webhooks/validate', { schema }, async (req) => handler.validate((req.body as AdmissionReview).request));
};
