/**
 * Another gateway in the test process with a harness's configuration: its
 * own directory cache, rate limiter, idempotency keeper and connections,
 * sharing only the harness's Redis and key prefix, as a second gateway of a
 * fleet does. (For a gateway that runs as its own process, see
 * gateway-process.ts.)
 */
import type { AddressInfo } from "node:net";
import type { Config } from "../../src/config.js";
import { createGateway } from "../../src/gateway/create-gateway.js";
import { buildServer } from "../../src/server/app.js";
import type { Harness } from "./harness.js";

export interface PeerGateway {
  readonly url: string;
  close(): Promise<void>;
}

/** A peer of `h`; `overrides` change some of its settings (the rest are the harness's). */
export async function startPeerGateway(h: Harness, overrides: Partial<Config> = {}): Promise<PeerGateway> {
  if (h.gateway.redis === undefined) throw new Error("a peer gateway shares the harness's Redis: start the harness with store: \"redis\"");
  const gateway = await createGateway({ ...h.config, ...overrides });
  const app = await buildServer(gateway, { logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await app.close();
      await gateway.close();
    },
  };
}
