/**
 * Runs in a real browser: the gateway's services called with connect-web's
 * gRPC-Web and Connect transports (fetch-based, as a browser tool would), and
 * REST with plain fetch. Bundled with esbuild by test/browser.test.ts.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { AvailabilityService, SearchAvailabilityRequestSchema } from "../../src/gen/dialstack/partner/v1/availability_pb.js";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";

type Outcome = { ok: true; value: unknown } | { ok: false; code: string; reason: string | undefined; message: string };

function transport(protocol: string, baseUrl: string) {
  return protocol === "grpc-web"
    ? createGrpcWebTransport({ baseUrl })
    : createConnectTransport({ baseUrl, jsonOptions: { useProtoFieldName: true } });
}

async function outcome(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await run() };
  } catch (e) {
    const error = ConnectError.from(e);
    return { ok: false, code: String(error.code), reason: error.findDetails(ErrorInfoSchema)[0]?.reason, message: error.rawMessage };
  }
}

const api = {
  search(protocol: string, baseUrl: string, key: string, body: JsonValue): Promise<Outcome> {
    const client = createClient(AvailabilityService, transport(protocol, baseUrl));
    return outcome(async () => {
      const res = await client.searchAvailability(fromJson(SearchAvailabilityRequestSchema, body), {
        headers: { authorization: `Bearer ${key}` },
      });
      return res.availabilities.map((a) => timestampMs(a.startAt!));
    });
  },
  stream(protocol: string, baseUrl: string, key: string, body: JsonValue): Promise<Outcome> {
    const client = createClient(AvailabilityService, transport(protocol, baseUrl));
    return outcome(async () => {
      const windows: number[] = [];
      for await (const m of client.streamAvailability(fromJson(SearchAvailabilityRequestSchema, body), {
        headers: { authorization: `Bearer ${key}` },
      })) {
        windows.push(timestampMs(m.window!.startAt!));
      }
      return windows;
    });
  },
  async rest(baseUrl: string, path: string, key: string, body: JsonValue, headers: Record<string, string> = {}) {
    const res = await fetch(baseUrl + path, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    return {
      status: res.status,
      body: await res.json(),
      replayed: res.headers.get("idempotent-replayed"),
      requestId: res.headers.get("x-request-id"),
    };
  },
};

(globalThis as unknown as { gateway: typeof api }).gateway = api;
