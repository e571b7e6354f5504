/**
 * CORS lets browser tools (API explorers, web playgrounds, Connect-Web
 * clients) call the gateway from another origin. Partners authenticate with a
 * bearer key, not cookies, so any origin may call and credentials are never
 * allowed. The lists are connect-es's, which every protocol needs, plus the
 * gateway's own request and response headers.
 */
import { cors } from "@connectrpc/connect";
import type { FastifyCorsOptions } from "@fastify/cors";

export const corsOptions: FastifyCorsOptions = {
  origin: "*",
  methods: [...cors.allowedMethods],
  allowedHeaders: [...cors.allowedHeaders, "Authorization", "Idempotency-Key", "X-Request-Id", "X-Server-Timeout", "traceparent", "tracestate"],
  exposedHeaders: [...cors.exposedHeaders, "Idempotent-Replayed", "Retry-After", "X-Request-Id"],
  maxAge: 7200,
  // A bare OPTIONS request is answered like a preflight rather than with an error of another shape.
  strictPreflight: false,
};
