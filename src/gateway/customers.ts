/**
 * Caller recognition. At the start of a phone call a voice bot asks the
 * platform who is calling, so it can greet a known caller by name and knows
 * about an upcoming appointment before it asks anything. Like appointments.ts
 * it is written once for every protocol; unlike a search, a lookup is always
 * relayed, never answered from a cache: a booking made a minute ago must show.
 *
 * The lookup webhook is optional for platforms, so a platform without it gets
 * an error of its own, `customer_lookup_not_supported`, which tells a bot to
 * go on without recognition instead of retrying.
 */
import { LookupCustomerResponseSchema, type LookupCustomerRequest, type LookupCustomerResponse } from "../gen/dialstack/partner/v1/customer_pb.js";
import { GatewayError } from "../errors.js";
import { fromPlatformJson, requirePlatformField } from "../platform/platform-json.js";
import type { JsonObject, WebhookClient } from "../platform/webhook-client.js";
import type { BotRoute, Directory } from "../store/directory.js";
import { webhookTarget, type Caller, type Relayed } from "./caller.js";
import { invalid, requirePhone, requireString } from "./validation.js";

const LOOKUP_WEBHOOK_PATH = "/customers/lookup";

export class Customers {
  constructor(
    private readonly directory: Directory,
    private readonly webhooks: WebhookClient,
  ) {}

  /** Checks a lookup request and returns the phone number to look up. */
  phoneOf(req: LookupCustomerRequest): string {
    if (req.customer === undefined) throw invalid("customer is required");
    return requirePhone(req.customer.phone, "customer.phone");
  }

  async lookupCustomer(caller: Caller, req: LookupCustomerRequest): Promise<Relayed<LookupCustomerResponse>> {
    const phone = this.phoneOf(req);
    const route = await this.directory.route(caller.partner, requireString(req.botId, "bot_id"));
    return this.lookupFor(caller, route, phone);
  }

  /** Relays one lookup of a checked phone number for an already checked route. */
  async lookupFor(caller: Caller, route: BotRoute, phone: string): Promise<Relayed<LookupCustomerResponse>> {
    const answer = await this.webhooks.post({
      target: webhookTarget(route),
      accountId: route.account.id,
      path: LOOKUP_WEBHOOK_PATH,
      payload: { account_id: route.account.id, customer: { phone } },
      signal: caller.signal,
      deadline: caller.deadline,
      requestId: caller.requestId,
      trace: caller.trace,
      // A lookup changes nothing on the platform: safe to send again on a stale connection.
      idempotent: true,
      whenMissing: () =>
        GatewayError.of(
          "customer_lookup_not_supported",
          `the scheduling platform of bot ${JSON.stringify(route.bot.id)}'s account does not implement customer lookup; go on without it`,
        ),
    });
    return { message: readLookup(answer.body), answer, replayed: false };
  }
}

function readLookup(body: JsonObject): LookupCustomerResponse {
  requirePlatformField(typeof body.found === "boolean", "found");
  return fromPlatformJson(LookupCustomerResponseSchema, body);
}
