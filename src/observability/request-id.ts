/**
 * Request ids: the one a caller sent in `X-Request-Id` when it is 1 to 128 of
 * `A-Z a-z 0-9 . _ : -`, otherwise a new UUID. Anything else a caller sends
 * (spaces, quotes, markup, a kilobyte of text) never reaches a log line, a
 * response header or a platform.
 */
import { randomUUID } from "node:crypto";

export const REQUEST_ID_HEADER = "x-request-id";

const VALID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdOf(given: string | string[] | undefined): string {
  return typeof given === "string" && VALID.test(given) ? given : randomUUID();
}
