/**
 * `grpc-message` as the gRPC specification encodes it: the UTF-8 bytes of the
 * text, each byte outside printable ASCII (0x20 to 0x7E) or equal to `%`
 * written as `%XX`, every other byte as itself.
 *
 * connect-es writes the header with `encodeURIComponent`, which also escapes
 * `:`, `/`, spaces and the like. A client that decodes as the specification
 * says (grpc-js, grpc-go, grpcurl) then shows `bot_not_found%3A ...` instead of
 * the message. Clients that decode with `decodeURIComponent`, as connect-es
 * does, read both spellings, so rewriting the header is safe for all of them.
 */

const HEADER = "grpc-message";

export function encodeGrpcMessage(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** Decodes a percent-encoded `grpc-message` (either spelling); a malformed one is returned as it is. */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Rewrites the `grpc-message` of gRPC trailers (or of a trailers-only
 * header block) that connect-es encoded, in place. True when it changed.
 */
export function respellGrpcMessage(trailer: Headers): boolean {
  const value = trailer.get(HEADER);
  if (value === null || !value.includes("%")) return false;
  const respelled = encodeGrpcMessage(decodeGrpcMessage(value));
  if (respelled === value) return false;
  trailer.set(HEADER, respelled);
  return true;
}
