/**
 * The tests' own reading of the documented webhook signature
 * (test/support/webhook-signature.ts), which the test platform uses to check
 * every webhook the gateway sends: it accepts a signature computed by another
 * implementation (openssl, below), refuses every way a signature can be
 * wrong, and accepts the gateway's signatures.
 */
import { expect, it } from "vitest";
import { signatureHeader } from "../src/platform/signature.js";
import { documentedSignature, documentedSignatureValid } from "./support/webhook-signature.js";

const SECRET = "whsec_doc_example";
const BODY = '{"account_id":"acct_1","query":{}}';
const T = 1_700_000_000;
/** printf '%s' '1700000000.{"account_id":"acct_1","query":{}}' | openssl dgst -sha256 -hmac whsec_doc_example */
const OPENSSL_V1 = "b305fbce997a3e41eef6e192161cc32dcb198e987a7528f59157b65ae305d1bf";
const at = (seconds: number) => seconds * 1000;

it("accepts a signature computed by openssl, and computes the same one", () => {
  expect(documentedSignatureValid(SECRET, `t=${T},v1=${OPENSSL_V1}`, BODY, at(T))).toBe(true);
  expect(documentedSignature(SECRET, BODY, at(T))).toBe(`t=${T},v1=${OPENSSL_V1}`);
});

it("refuses another body, another secret, a stale or future time, and malformed headers", () => {
  const header = `t=${T},v1=${OPENSSL_V1}`;
  expect(documentedSignatureValid(SECRET, header, BODY + " ", at(T))).toBe(false);
  expect(documentedSignatureValid(SECRET + "x", header, BODY, at(T))).toBe(false);
  expect(documentedSignatureValid(SECRET, header, BODY, at(T + 301))).toBe(false);
  expect(documentedSignatureValid(SECRET, header, BODY, at(T - 301))).toBe(false);
  expect(documentedSignatureValid(SECRET, header, BODY, at(T + 299))).toBe(true);
  for (const bad of [undefined, "", `v1=${OPENSSL_V1}`, `t=${T}`, `t=${T},v1=${OPENSSL_V1.toUpperCase()}`, `t=${T + 1},v1=${OPENSSL_V1}`, `t=${T};v1=${OPENSSL_V1}`]) {
    expect(documentedSignatureValid(SECRET, bad, BODY, at(T)), String(bad)).toBe(false);
  }
});

it("accepts the gateway's signatures", () => {
  expect(documentedSignatureValid(SECRET, signatureHeader(SECRET, BODY), BODY)).toBe(true);
  expect(documentedSignatureValid(SECRET, signatureHeader(SECRET, Buffer.from(BODY), T), BODY, at(T))).toBe(true);
});
