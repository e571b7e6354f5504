/**
 * Gives every test file a Redis: the one at `REDIS_URL` when it is set,
 * otherwise a redis-server started for this run. Test files isolate
 * themselves with their own key prefixes.
 */
import type { TestProject } from "vitest/node";
import { RedisServer } from "./redis-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let server: RedisServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  let url = process.env.REDIS_URL;
  if (url === undefined || url === "") {
    server = await RedisServer.start();
    url = server.url;
  }
  project.provide("redisUrl", url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
