/**
 * Drives a bot session from a test the way a voice-bot runtime does: messages
 * are sent one at a time while answers are read, and the test decides when to
 * half-close.
 */
import type { Client } from "@connectrpc/connect";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { BotSessionService, type ConverseRequest, type ConverseResponse, ConverseRequestSchema } from "../../src/gen/dialstack/partner/v1/session_pb.js";
import { bearer, bookingRequest, lookupRequest, searchRequest } from "./clients.js";

/** An async iterable the test pushes into; `close()` is the half-close. */
export class Outgoing<T> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private closed = false;
  private wake: (() => void) | undefined;

  push(value: T): void {
    this.queue.push(value);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const next = this.queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

/**
 * A session as a test drives it. Like a well-behaved client, it stops sending
 * (half-closes) once the gateway has ended the stream, so the HTTP/2 stream
 * closes on both sides.
 */
export interface SessionDriver {
  send(message: MessageInitShape<typeof ConverseRequestSchema>): void;
  /** Half-closes the request side. */
  close(): void;
  /** The next answer; throws the stream's error, or fails when the stream ended. */
  next(): Promise<ConverseResponse>;
  /** Every answer until the stream ends; throws the stream's error. */
  rest(): Promise<ConverseResponse[]>;
}

export function openSession(
  client: Client<typeof BotSessionService>,
  key: string,
  options: { signal?: AbortSignal; headers?: Record<string, string> } = {},
): SessionDriver {
  const outgoing = new Outgoing<ConverseRequest>();
  const answers = client.converse(outgoing, { ...bearer(key, options.headers), signal: options.signal })[Symbol.asyncIterator]();
  const receive = async (): Promise<IteratorResult<ConverseResponse>> => {
    try {
      const r = await answers.next();
      if (r.done) outgoing.close();
      return r;
    } catch (e) {
      outgoing.close();
      throw e;
    }
  };
  return {
    send: (message) => outgoing.push(create(ConverseRequestSchema, message)),
    close: () => outgoing.close(),
    async next() {
      const r = await receive();
      if (r.done) throw new Error("the session ended");
      return r.value;
    },
    async rest() {
      const all: ConverseResponse[] = [];
      for (;;) {
        const r = await receive();
        if (r.done) return all;
        all.push(r.value);
      }
    },
  };
}

/** A `start` message. */
export function start(requestId: string, botId: string): MessageInitShape<typeof ConverseRequestSchema> {
  return { requestId, op: { case: "start", value: { botId } } };
}

/** A `search_availability` operation from its REST-style JSON body. */
export function search(requestId: string, json: unknown): MessageInitShape<typeof ConverseRequestSchema> {
  return { requestId, op: { case: "searchAvailability", value: searchRequest(json) } };
}

/** A `create_booking` operation from its REST-style JSON body. */
export function book(requestId: string, json: unknown): MessageInitShape<typeof ConverseRequestSchema> {
  return { requestId, op: { case: "createBooking", value: bookingRequest(json) } };
}

/** A `lookup_customer` operation from its REST-style JSON body. */
export function lookup(requestId: string, json: unknown): MessageInitShape<typeof ConverseRequestSchema> {
  return { requestId, op: { case: "lookupCustomer", value: lookupRequest(json) } };
}
