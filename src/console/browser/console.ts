/**
 * The console's behaviour in the browser: it reads the page's fields, calls
 * the gateway over gRPC-Web and shows what came back. The page itself is
 * plain HTML rendered by the gateway (console-page.ts); this script only adds
 * to it, through the DOM (no HTML strings), so the page's Content-Security-
 * Policy can forbid inline script and require Trusted Types.
 *
 * The partner key is read from its field at each call and kept nowhere else:
 * not in storage, not in the URL, not in the calls list.
 */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Availability, Booking } from "../../gen/dialstack/partner/v1/types_pb.js";
import { PAGE_IDS } from "../page-ids.js";
import { BookingAttempts, type Attempt } from "./booking-attempts.js";
import { formatDay, formatInstant, formatTime, nextWeekday } from "./format.js";
import { GatewayClient, type CallFacts, type Outcome } from "./gateway-client.js";

const DAY_MS = 86_400_000;
const MAX_CALLS_SHOWN = 20;

function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
}

type Child = Node | string | undefined | false;

/** An element with attributes and children; text is always text, never parsed as HTML. */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) if (child !== undefined && child !== false) node.append(child);
  return node;
}

/** A definition list from label/value rows; rows without a value are left out. */
function facts(rows: readonly (readonly [string, Child])[]): HTMLDListElement {
  const list = el("dl");
  for (const [label, value] of rows) {
    if (value === undefined || value === false || value === "") continue;
    list.append(el("div", {}, el("dt", {}, label), el("dd", {}, value)));
  }
  return list;
}

const code = (text: string) => el("code", {}, text);

const fields = {
  partnerKey: byId<HTMLInputElement>(PAGE_IDS.partnerKey),
  botId: byId<HTMLInputElement>(PAGE_IDS.botId),
  callerPhone: byId<HTMLInputElement>(PAGE_IDS.callerPhone),
  customerName: byId<HTMLInputElement>(PAGE_IDS.customerName),
  customerPhone: byId<HTMLInputElement>(PAGE_IDS.customerPhone),
  day: byId<HTMLInputElement>(PAGE_IDS.day),
  days: byId<HTMLSelectElement>(PAGE_IDS.days),
};
const lookupResult = byId(PAGE_IDS.lookupResult);
const searchStatus = byId(PAGE_IDS.searchStatus);
const slots = byId(PAGE_IDS.slots);
const result = byId(PAGE_IDS.result);
const calls = byId<HTMLOListElement>(PAGE_IDS.calls);

const client = new GatewayClient(location.origin);
const attempts = new BookingAttempts();
let search: AbortController | undefined;

/** True when every field is filled in validly; otherwise the browser points at the first that is not. */
function filledIn(...inputs: HTMLInputElement[]): boolean {
  return inputs.every((input) => {
    input.value = input.value.trim();
    return input.reportValidity();
  });
}

function requestIdOf(outcome: CallFacts): Child {
  return outcome.requestId === undefined ? undefined : code(outcome.requestId);
}

/** An error as the gateway described it: the machine code, the protocol status, the message. */
function errorFacts(outcome: Outcome<unknown> & { ok: false }, extra: readonly (readonly [string, Child])[] = []): HTMLDListElement {
  return facts([
    ["Code", code(outcome.error.code)],
    ["Status", code(outcome.error.status)],
    ["Message", outcome.error.message],
    ...extra,
    ["Request ID", requestIdOf(outcome)],
  ]);
}

/** One line in the list of calls this page made: the method, how it ended, its request id. */
function logCall(method: string, outcome: Outcome<unknown>): void {
  const ended = outcome.ok ? (outcome.replayed ? "replayed" : "ok") : outcome.error.code;
  const time = new Date().toISOString().slice(11, 19);
  calls.prepend(
    el("li", {}, el("span", { class: "time" }, time), " ", code(method), " ", el("span", { class: outcome.ok ? "ok" : "failed" }, ended), " ", requestIdOf(outcome) ?? ""),
  );
  while (calls.children.length > MAX_CALLS_SHOWN) calls.lastElementChild!.remove();
}

function busy(button: HTMLButtonElement | null, on: boolean): void {
  if (button === null) return;
  button.disabled = on;
  button.setAttribute("aria-busy", String(on));
}

// Caller lookup.

byId<HTMLFormElement>(PAGE_IDS.lookupForm).addEventListener("submit", (event) => {
  event.preventDefault();
  void lookUp((event as SubmitEvent).submitter as HTMLButtonElement | null);
});

async function lookUp(button: HTMLButtonElement | null): Promise<void> {
  if (!filledIn(fields.partnerKey, fields.botId, fields.callerPhone)) return;
  busy(button, true);
  lookupResult.replaceChildren(el("p", {}, "Looking up…"));
  const phone = fields.callerPhone.value;
  const outcome = await client.lookupCustomer(fields.partnerKey.value, { botId: fields.botId.value, customer: { phone } });
  busy(button, false);
  logCall("LookupCustomer", outcome);
  if (!outcome.ok) {
    lookupResult.replaceChildren(el("p", { class: "failed" }, "The lookup failed."), errorFacts(outcome));
    return;
  }
  const { found, customer } = outcome.value;
  if (!found || customer === undefined) {
    lookupResult.replaceChildren(el("p", {}, "The platform does not know this number."), facts([["Request ID", requestIdOf(outcome)]]));
    return;
  }
  const appointment = customer.existingAppointment;
  const use = el("button", { type: "button" }, "Use as customer");
  use.addEventListener("click", () => {
    fields.customerName.value = customer.name;
    fields.customerPhone.value = customer.phone || phone;
  });
  lookupResult.replaceChildren(
    facts([
      ["Name", customer.name],
      ["Phone", customer.phone],
      [
        "Appointment",
        appointment?.startAt &&
          `${formatDay(appointment.startAt)}, ${formatTime(appointment.startAt)}${appointment.endAt ? `–${formatTime(appointment.endAt)}` : ""} UTC${appointment.status ? ` (${appointment.status})` : ""}`,
      ],
      ["Request ID", requestIdOf(outcome)],
    ]),
    use,
  );
}

// Availability search: the days arrive one by one, as the platform answers.

fields.day.value = nextWeekday();

byId<HTMLFormElement>(PAGE_IDS.searchForm).addEventListener("submit", (event) => {
  event.preventDefault();
  void searchSlots((event as SubmitEvent).submitter as HTMLButtonElement | null);
});

async function searchSlots(button: HTMLButtonElement | null): Promise<void> {
  if (!filledIn(fields.partnerKey, fields.botId, fields.day)) return;
  search?.abort();
  const current = new AbortController();
  search = current;
  const days = Number(fields.days.value);
  const startMs = Date.parse(`${fields.day.value}T00:00:00Z`);
  const botId = fields.botId.value;
  slots.replaceChildren();
  searchStatus.replaceChildren("Searching…");
  busy(button, true);
  let free = 0;
  let received = 0;
  const outcome = await client.streamAvailability(
    fields.partnerKey.value,
    { botId, query: { filter: { startAtRange: { startAt: timestampFromMs(startMs), endAt: timestampFromMs(startMs + days * DAY_MS) } } } },
    current.signal,
    (window) => {
      received++;
      free += window.availabilities.length;
      slots.append(dayOfSlots(botId, window.window?.startAt, window.availabilities));
      searchStatus.replaceChildren(`${received} of ${days} ${days === 1 ? "day" : "days"} received…`);
    },
  );
  if (search !== current) return; // a newer search replaced this one
  busy(button, false);
  logCall("StreamAvailability", outcome);
  if (outcome.ok) {
    searchStatus.replaceChildren(
      facts([
        ["Found", `${free} free ${free === 1 ? "slot" : "slots"} in ${days} ${days === 1 ? "day" : "days"}`],
        ["Request ID", requestIdOf(outcome)],
      ]),
    );
  } else {
    searchStatus.replaceChildren(el("p", { class: "failed" }, received === 0 ? "The search failed." : `The search failed after ${received} of ${days} days.`), errorFacts(outcome));
  }
}

function dayOfSlots(botId: string, start: Timestamp | undefined, availabilities: readonly Availability[]): HTMLElement {
  const title = start === undefined ? "" : formatDay(start);
  const list = el("ul", { class: "slot-list" });
  for (const slot of availabilities) {
    if (slot.startAt === undefined) continue;
    const button = el(
      "button",
      { type: "button", class: "slot" },
      `Book ${formatTime(slot.startAt)}`,
      el("span", { class: "visually-hidden" }, ` on ${formatDay(slot.startAt)} (UTC), ${slot.durationMinutes} minutes`),
    );
    button.addEventListener("click", () => void book(botId, slot, button));
    list.append(el("li", {}, button));
  }
  return el("section", { class: "day" }, el("h3", {}, title), availabilities.length === 0 ? el("p", {}, "No free slots.") : list);
}

// Booking.

async function book(botId: string, slot: Availability, button: HTMLButtonElement): Promise<void> {
  if (!filledIn(fields.partnerKey, fields.customerName, fields.customerPhone)) return;
  const customer = { name: fields.customerName.value, phone: fields.customerPhone.value };
  const request = { botId, startAt: formatInstant(slot.startAt), durationMinutes: slot.durationMinutes, customerName: customer.name, customerPhone: customer.phone };
  const attempt = attempts.next(request);
  busy(button, true);
  result.replaceChildren(el("p", {}, `Booking ${formatTime(slot.startAt!)} on ${formatDay(slot.startAt!)}…`));
  const outcome = await client.createBooking(fields.partnerKey.value, attempt.idempotencyKey, {
    botId,
    booking: { startAt: slot.startAt, durationMinutes: slot.durationMinutes, customer },
  });
  const keyKept = attempts.settle(request, attempt, outcome.ok ? "ok" : outcome.error.status);
  busy(button, false);
  logCall("CreateBooking", outcome);
  if (outcome.ok) {
    if (!button.classList.contains("booked")) {
      button.classList.add("booked");
      button.firstChild!.after(" ✓");
    }
    result.replaceChildren(outcome.value.booking === undefined ? el("p", {}, "The platform answered without a booking.") : bookingFacts(outcome.value.booking, outcome, attempt));
  } else {
    result.replaceChildren(
      el("h3", { class: "failed" }, "Booking failed"),
      errorFacts(outcome, [
        ["Replayed", outcome.replayed ? "yes: the stored answer of an earlier attempt with this key" : "no"],
        ["Idempotency-Key", keyFact(attempt)],
      ]),
      el(
        "p",
        {},
        keyKept
          ? "Clicking the slot again retries with the same Idempotency-Key, so a booking that was made is not made twice."
          : "The answer is final: clicking the slot again sends a new booking, with a new Idempotency-Key.",
      ),
    );
  }
}

function keyFact(attempt: Attempt): Child {
  return el("span", {}, code(attempt.idempotencyKey), attempt.retry ? " (resent after the failed attempt)" : "");
}

/** The booking as the platform returned it, with what the gateway said about the call. */
function bookingFacts(booking: Booking, outcome: CallFacts, attempt: Attempt): DocumentFragment {
  const fragment = document.createDocumentFragment();
  const customer = booking.customer;
  const location = booking.location;
  const extra = booking.platformFields;
  fragment.append(
    el("h3", { class: "ok" }, outcome.replayed ? "Booked (a replay of the earlier answer)" : "Booked"),
    facts([
      ["Booking ID", code(booking.id)],
      ["Status", code(booking.status)],
      ["Starts", formatInstant(booking.startAt)],
      ["Ends", formatInstant(booking.endAt)],
      ["Customer", customer && [customer.name, customer.phone, customer.email].filter(Boolean).join(", ")],
      ["Location", location && [location.name, location.address].filter(Boolean).join(", ")],
      ["Notes", booking.notes],
      ["Created", formatInstant(booking.createdAt)],
      ["Platform fields", extra !== undefined && Object.keys(extra).length > 0 && el("pre", {}, JSON.stringify(extra, null, 2))],
      ["Replayed", outcome.replayed ? "yes: the stored answer of an earlier attempt with this key" : "no"],
      ["Idempotency-Key", keyFact(attempt)],
      ["Request ID", requestIdOf(outcome)],
    ]),
  );
  return fragment;
}
