/**
 * Who is calling the business logic, and what every relay gives back: the
 * pieces that appointments, customers and bot sessions share, whatever
 * protocol the call came by.
 */
import type { PlatformAnswer, WebhookTarget } from "../platform/webhook-client.js";
import type { BotRoute } from "../store/directory.js";
import type { Partner } from "../store/directory-store.js";
import type { CallSpan } from "../tracing/tracer.js";

/** Who is calling, and for how long they will wait. */
export interface Caller {
  readonly partner: Partner;
  /** Aborts when the caller goes away or its deadline passes. */
  readonly signal?: AbortSignal | undefined;
  /** The caller's deadline, epoch milliseconds. */
  readonly deadline?: number | undefined;
  /** The call's request id, passed on to the platform. */
  readonly requestId?: string | undefined;
  /** The call's span; the platform's webhooks join its trace. */
  readonly trace?: CallSpan | undefined;
}

/** A platform answer: the typed message for RPC clients, and the answer as sent for REST clients. */
export interface Relayed<T> {
  readonly message: T;
  readonly answer: PlatformAnswer;
  /** True when a stored result of an earlier request with the same idempotency key is returned. */
  readonly replayed: boolean;
}

/** Where a checked route's webhooks go: the platform's URL and the secret that signs them. */
export function webhookTarget(route: BotRoute): WebhookTarget {
  return { webhookUrl: route.platform.webhookUrl!, webhookSecret: route.platform.webhookSecret! };
}
