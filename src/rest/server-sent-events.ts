/**
 * Server-Sent Events: how REST sends a server stream. Each message of the
 * stream is a `message` event whose data is the message's JSON; a stream that
 * ends well ends with an `end` event; a stream that fails ends with an `error`
 * event whose data is the REST error envelope. A client therefore always
 * knows whether it saw the whole stream.
 */
import type { StreamItem } from "./transcoder.js";

export const EVENT_STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8";

export async function* serverSentEvents(items: AsyncIterable<StreamItem>): AsyncGenerator<string> {
  for await (const item of items) {
    switch (item.kind) {
      case "message":
        yield frame("message", item.json);
        break;
      case "end":
        yield frame("end", "{}");
        break;
      case "error":
        yield frame("error", JSON.stringify({ error: { code: item.error.code, message: item.error.message } }));
        break;
    }
  }
}

function frame(event: string, data: string): string {
  return `event: ${event}\n${data
    .split(/\r?\n/)
    .map((line) => `data: ${line}\n`)
    .join("")}\n`;
}
