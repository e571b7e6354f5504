/**
 * A bot session: one long-lived bidirectional stream per phone call, so a
 * voice bot pays for authentication, routing and connection set-up once and
 * then gets each answer as soon as the platform gives it.
 *
 * The rules a client relies on:
 *
 * - The first message must be `start`; it binds the session to a bot (checked
 *   once: the bot exists, belongs to the caller, and its account has a
 *   webhook) and is answered with `started`. Any other first message, or a bot
 *   that fails the check, ends the stream with that error.
 * - Every later message is one operation with a client-chosen, non-empty
 *   `request_id`. Its `bot_id` may be empty (the session's bot) or the
 *   session's bot; anything else is an error answer.
 * - Operations run concurrently; each gets exactly one answer carrying its
 *   `request_id`, in the order they finish. A failed operation is an `error`
 *   answer (`OperationError.code` is the machine code of the error model) and
 *   the session goes on. Protocol slips are error answers too:
 *   `invalid_request` (no `request_id`, no operation, a second `start`, another
 *   bot), `duplicate_request_id` (the id of an operation still in flight; that
 *   id then gets two answers, this error and the first operation's own),
 *   `too_many_operations` (more than `maxInFlight` in flight; nothing is sent
 *   to the platform, retry after an answer arrives).
 * - Operations are `search_availability`, `create_booking` and
 *   `lookup_customer`, each checked and relayed exactly as its unary call.
 * - Bookings go through the same `createBooking` and idempotency keeper as
 *   unary calls, with the session's bot, so a key used in a session and in a
 *   unary call with the same booking is one booking. The key must be the
 *   `create_booking.idempotency_key` field: one stream carries many bookings,
 *   so a stream-wide `Idempotency-Key` header cannot name one of them and is
 *   not used.
 * - When the client half-closes, operations in flight finish and are
 *   answered, then the stream ends OK.
 * - With no operation started and nothing in flight for `idleMs`, the stream
 *   ends with `session_idle`. Messages that start no operation (empty ones,
 *   refused ones) do not keep a session alive, and every message after
 *   `start` is charged to the partner's rate limit like a call, so a session
 *   cannot be held open, or used to send work, for free.
 * - A session lasts at most `maxLifetimeMs`; then it ends like an idle one,
 *   with `session_expired`.
 * - A partner holds at most the registry's number of open sessions
 *   (`too_many_sessions` for the next), and a partner whose key is rotated or
 *   deleted has its sessions ended with `unauthorized` (see
 *   session-registry.ts).
 * - When the gateway shuts down it stops reading, answers the operations in
 *   flight, then ends the stream with `shutting_down` (unavailable). An
 *   operation without an answer was never started, so it is safe to send it
 *   again on a new session.
 * - The caller going away (cancel, reset, deadline) aborts the webhooks in
 *   flight.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { CreateBookingRequest } from "../gen/dialstack/partner/v1/booking_pb.js";
import type { SearchAvailabilityRequest } from "../gen/dialstack/partner/v1/availability_pb.js";
import type { LookupCustomerRequest } from "../gen/dialstack/partner/v1/customer_pb.js";
import {
  type ConverseRequest,
  type ConverseResponse,
  ConverseResponseSchema,
} from "../gen/dialstack/partner/v1/session_pb.js";
import { GatewayError } from "../errors.js";
import type { BotRoute } from "../store/directory.js";
import type { Appointments } from "./appointments.js";
import type { Caller } from "./caller.js";
import type { Customers } from "./customers.js";
import type { CallLimiter } from "./rate-limiter.js";
import type { SessionRegistry } from "./session-registry.js";
import { invalid } from "./validation.js";

export interface BotSessionOptions {
  /** Operations one session may have in flight. */
  readonly maxInFlight: number;
  /** A session with no operation started and nothing in flight for this long is closed. */
  readonly idleMs: number;
  /** A session is ended this long after it opened. */
  readonly maxLifetimeMs: number;
  /** Counts the partner's open sessions and ends them when its key is revoked. */
  readonly registry?: SessionRegistry | undefined;
  /** Aborts when the gateway begins to shut down. */
  readonly shutdownSignal?: AbortSignal | undefined;
  /** Receives failures that a client sees only as `internal_error`. */
  readonly reportError?: ((error: unknown) => void) | undefined;
  /** Charged once per operation, as a unary call is, so a session is no way around the partner's limit. */
  readonly rateLimiter?: CallLimiter | undefined;
}

type Result = MessageInitShape<typeof ConverseResponseSchema>["result"];
type Operation = Exclude<ConverseRequest["op"], { case: "start" } | { case: undefined }>;

/** Each operation's field name in `ConverseRequest`, as error messages spell it. */
const OPERATION_FIELDS: Readonly<Record<Operation["case"], string>> = {
  searchAvailability: "search_availability",
  createBooking: "create_booking",
  lookupCustomer: "lookup_customer",
};

/** Wakes everyone waiting for the session's state to change. */
class Changes {
  private waiters: (() => void)[] = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** One session; `converse` is called once, with the stream of the client's messages. */
export class BotSession {
  private readonly outbox: ConverseResponse[] = [];
  private readonly inFlight = new Set<string>();
  private readonly changes = new Changes();
  /** Aborts the operations when the session is over, whatever the reason. */
  private readonly over = new AbortController();
  /** The caller's signal and `over`: what the operations' webhooks listen to. */
  private readonly signal: AbortSignal;
  private readonly caller: Caller;
  private route: BotRoute | undefined;
  private reading = true;
  /** Why the session ends once the operations in flight are answered. */
  private ending: { readonly error: unknown } | undefined;
  /** Releases the read in progress, if any, when the session ends. */
  private interruptRead: (() => void) | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private lifetimeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly appointments: Appointments,
    private readonly customers: Customers,
    caller: Caller,
    private readonly options: BotSessionOptions,
  ) {
    this.signal = caller.signal === undefined ? this.over.signal : AbortSignal.any([caller.signal, this.over.signal]);
    this.caller = { ...caller, signal: this.signal };
  }

  async *converse(requests: AsyncIterable<ConverseRequest>): AsyncGenerator<ConverseResponse> {
    const release = this.options.registry?.open(this.caller.partner, { end: (error) => this.end(error) });
    try {
      yield* this.serve(requests);
    } finally {
      release?.();
    }
  }

  private async *serve(requests: AsyncIterable<ConverseRequest>): AsyncGenerator<ConverseResponse> {
    const shutdown = this.options.shutdownSignal;
    const onShutdown = () => this.end(GatewayError.of("shutting_down", "the gateway is shutting down; open a new session", { retryAfterSeconds: 1 }));
    if (shutdown?.aborted) onShutdown();
    else shutdown?.addEventListener("abort", onShutdown, { once: true });
    // The caller going away or its deadline passing aborts the operations
    // (through the signal they share) and ends the session.
    const onGone = () => this.end(GatewayError.of("canceled", "the session was cancelled or its deadline passed"));
    this.signal.addEventListener("abort", onGone, { once: true });
    this.armIdleTimer();
    this.lifetimeTimer = setTimeout(() => {
      const seconds = Math.round(this.options.maxLifetimeMs / 1000);
      this.end(GatewayError.of("session_expired", `a session lasts at most ${seconds} s; open a new session`));
    }, this.options.maxLifetimeMs);
    this.lifetimeTimer.unref();
    void this.read(requests[Symbol.asyncIterator]());
    try {
      for (;;) {
        const answer = this.outbox.shift();
        if (answer !== undefined) {
          this.changes.notify();
          yield answer;
          continue;
        }
        if (!this.reading && this.inFlight.size === 0) {
          if (this.ending !== undefined) throw this.ending.error;
          return;
        }
        await this.changes.wait();
      }
    } finally {
      shutdown?.removeEventListener("abort", onShutdown);
      this.signal.removeEventListener("abort", onGone);
      this.end(GatewayError.of("canceled", "the session is over"));
      clearTimeout(this.idleTimer);
      clearTimeout(this.lifetimeTimer);
      this.over.abort();
    }
  }

  /** Stops reading; the stream ends with `error` once the operations in flight are answered. */
  private end(error: unknown): void {
    if (this.ending !== undefined) return;
    this.ending = { error };
    clearTimeout(this.idleTimer);
    this.interruptRead?.();
    this.changes.notify();
  }

  private async read(messages: AsyncIterator<ConverseRequest>): Promise<void> {
    try {
      const first = await this.receive(messages);
      if (first === undefined) return;
      await this.start(first);
      for (;;) {
        // Answers the client does not read stop the reading, so HTTP/2 flow
        // control holds back a client that only sends.
        while (this.outbox.length >= this.options.maxInFlight && this.ending === undefined) await this.changes.wait();
        const message = await this.receive(messages);
        if (message === undefined) return;
        // Admitted one at a time, in order: the rate limit may take a round trip.
        await this.dispatch(message);
      }
    } catch (e) {
      this.end(e);
    } finally {
      this.reading = false;
      this.changes.notify();
    }
  }

  /** The next message, or undefined when the client half-closed or the session is ending. */
  private async receive(messages: AsyncIterator<ConverseRequest>): Promise<ConverseRequest | undefined> {
    if (this.ending !== undefined) return undefined;
    const next = messages.next();
    // Once the session ends nobody awaits this read; its failure is moot.
    next.catch(() => {});
    const result = await new Promise<IteratorResult<ConverseRequest> | undefined>((resolve, reject) => {
      this.interruptRead = () => resolve(undefined);
      next.then(resolve, reject);
    }).finally(() => (this.interruptRead = undefined));
    if (result === undefined || result.done === true || this.ending !== undefined) return undefined;
    return result.value;
  }

  private async start(first: ConverseRequest): Promise<void> {
    if (first.op.case !== "start") {
      throw invalid("the first message of a session must be `start`, naming the bot (start.bot_id)");
    }
    const route = await this.appointments.route(this.caller, first.op.value.botId);
    this.route = route;
    this.answer(first.requestId, { case: "started", value: { botId: route.bot.id, accountId: route.account.id } });
    this.armIdleTimer();
  }

  private async dispatch(message: ConverseRequest): Promise<void> {
    const id = message.requestId;
    const rejection = await this.check(message);
    if (rejection !== undefined) {
      // A refused message does not count as activity: the idle clock goes on.
      this.answerError(id, rejection);
      return;
    }
    void this.run(id, message.op as Operation);
  }

  private async run(id: string, op: Operation): Promise<void> {
    this.inFlight.add(id);
    clearTimeout(this.idleTimer);
    try {
      this.answer(id, await this.perform(op));
    } catch (e) {
      this.answerError(id, e);
    } finally {
      this.inFlight.delete(id);
      this.armIdleTimer();
      this.changes.notify();
    }
  }

  /** Why an operation is not run, if it is not. */
  private async check(message: ConverseRequest): Promise<GatewayError | undefined> {
    const { op, requestId } = message;
    // Every message is charged, empty and invalid ones too: none is free.
    try {
      await this.options.rateLimiter?.charge(this.caller.partner.id);
    } catch (e) {
      return GatewayError.from(e);
    }
    if (op.case === "start") return invalid("`start` is only allowed as the first message; this session is already bound");
    if (op.case === undefined) return invalid("op is required: search_availability, create_booking or lookup_customer");
    if (requestId === "") return invalid("request_id is required");
    if (this.inFlight.has(requestId)) {
      return GatewayError.of("duplicate_request_id", `an operation with request_id "${requestId}" is still in flight`);
    }
    if (this.inFlight.size >= this.options.maxInFlight) {
      return GatewayError.of(
        "too_many_operations",
        `at most ${this.options.maxInFlight} operations may be in flight in one session; send it again after an answer`,
      );
    }
    const botId = op.value.botId;
    const bound = this.route!.bot.id;
    if (botId !== "" && botId !== bound) {
      return invalid(`${OPERATION_FIELDS[op.case]}.bot_id must be empty or the session's bot "${bound}"`);
    }
    return undefined;
  }

  private async perform(op: Operation): Promise<Result> {
    switch (op.case) {
      case "searchAvailability":
        return { case: "searchAvailability", value: await this.search(op.value) };
      case "createBooking":
        return { case: "createBooking", value: await this.book(op.value) };
      case "lookupCustomer":
        return { case: "lookupCustomer", value: await this.lookup(op.value) };
    }
  }

  private async search(req: SearchAvailabilityRequest) {
    const range = this.appointments.searchRange(req);
    return (await this.appointments.searchRangeOf(this.caller, this.route!, range)).message;
  }

  private async lookup(req: LookupCustomerRequest) {
    const phone = this.customers.phoneOf(req);
    return (await this.customers.lookupFor(this.caller, this.route!, phone)).message;
  }

  private async book(req: CreateBookingRequest) {
    if (req.idempotencyKey === "") {
      throw GatewayError.of(
        "idempotency_key_invalid",
        "create_booking.idempotency_key is required in a session (one key per booking; the Idempotency-Key header does not apply to sessions)",
      );
    }
    const relayed = await this.appointments.createBooking(this.caller, { ...req, botId: this.route!.bot.id }, undefined);
    return relayed.message;
  }

  private answer(requestId: string, result: Result): void {
    this.outbox.push(create(ConverseResponseSchema, { requestId, result }));
    this.changes.notify();
  }

  private answerError(requestId: string, e: unknown): void {
    const error = GatewayError.from(e);
    if (error.code === "internal_error") this.options.reportError?.(e);
    this.answer(requestId, { case: "error", value: { code: error.code, message: error.message } });
  }

  /** Starts the idle clock when nothing is in flight (again from zero). */
  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    if (this.inFlight.size > 0 || this.ending !== undefined) return;
    this.idleTimer = setTimeout(() => {
      const seconds = Math.round(this.options.idleMs / 1000);
      this.end(GatewayError.of("session_idle", `the session started no operation and had nothing in flight for ${seconds} s; open a new session`));
    }, this.options.idleMs);
    this.idleTimer.unref();
  }
}
