/**
 * A self-signed certificate for 127.0.0.1 and localhost, made with openssl at
 * test time in a directory of its own, for the tests that serve TLS.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openssl } from "./system-programs.js";

/** openssl, which makes the certificate; the tests that serve TLS skip without it (outside CI). */
export const opensslProgram = openssl("TLS tests");

export interface TestCertificate {
  /** Paths of the PEM files, as TLS_CERT_FILE and TLS_KEY_FILE take them. */
  readonly cert: string;
  readonly key: string;
  /** The certificate itself, for clients to trust. */
  readonly ca: Buffer;
  /** Deletes the files. */
  remove(): void;
}

export function makeTestCertificate(): TestCertificate {
  opensslProgram.require();
  const dir = mkdtempSync(join(tmpdir(), "gw-cert-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "1"]
      .concat(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]),
    { stdio: "ignore" },
  );
  return { cert, key, ca: readFileSync(cert), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
