/**
 * A private redis-server on a free port, for tests that must not depend on a
 * shared Redis or that stop, pause or restart it. By default it keeps nothing
 * on disk, so a restart comes back empty; with `appendfsync` it keeps an
 * append-only file in its own directory and a restart reads it back.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`redis-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RedisServerOptions {
  /** Keep an append-only file, synced this way; none by default. */
  readonly appendfsync?: "always" | "everysec" | "no";
  /** More `redis-server` arguments, e.g. `["--rename-command", "CONFIG", ""]`. */
  readonly args?: readonly string[];
}

export class RedisServer {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), "gw-redis-"));

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options);
    await server.resume();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port and directory: with an append-only file, the data comes back. */
  async resume(): Promise<void> {
    const { appendfsync, args = [] } = this.options;
    const persistence = appendfsync === undefined ? ["--appendonly", "no"] : ["--appendonly", "yes", "--appendfsync", appendfsync];
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--dir", this.dir, ...args],
      { stdio: "ignore" },
    );
    child.once("error", (e) => {
      throw new Error(`cannot start redis-server (is it installed? apt-get install redis-server): ${e.message}`);
    });
    this.child = child;
    await waitForPort(this.port, 5000);
  }

  /** Stops the server abruptly (SIGKILL). */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
    this.child = undefined;
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.child?.kill("SIGSTOP");
  }

  unpause(): void {
    this.child?.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    this.unpause();
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
