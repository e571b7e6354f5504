/**
 * Plain HTTP/1.1 requests, as curl or any REST client sends them: no
 * protocol library between the test and the socket, every header and byte of
 * the answer visible.
 */
import http from "node:http";

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: any;
}

export interface HttpRequest {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /** A string or bytes sent as they are; another value is sent as JSON with `Content-Type: application/json`. */
  readonly body?: unknown;
}

export function send(url: string, req: HttpRequest = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...req.headers };
  let body: Buffer | undefined;
  if (typeof req.body === "string" || Buffer.isBuffer(req.body)) body = Buffer.from(req.body);
  else if (req.body !== undefined) {
    body = Buffer.from(JSON.stringify(req.body));
    if (!Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) headers["content-type"] = "application/json";
  }
  return new Promise((resolve, reject) => {
    const r = http.request(url, { method: req.method ?? (body === undefined ? "GET" : "POST"), headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    r.on("error", reject);
    r.end(body);
  });
}
