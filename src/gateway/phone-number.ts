/**
 * The E.164 form of a phone number, written once for everything that checks
 * one: the gateway's validation, the OpenAPI schema and the console's phone
 * fields (an HTML `pattern`). `+`, a country code (never starting with 0) and
 * the subscriber number, 8 to 15 digits in all, with no spaces or
 * punctuation. Platforms match callers on this exact form, so anything else
 * is refused rather than guessed at.
 *
 * A pattern string, not a RegExp, so each user writes it in its own syntax;
 * and this module imports nothing, so a page or a browser script can import
 * it without pulling server code in.
 */
export const E164_PATTERN = "^\\+[1-9][0-9]{7,14}$";
