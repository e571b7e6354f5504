/**
 * One attack on a gateway, run as its own process so that it does not slow
 * down the client that measures the gateway's service. Every attack sends to
 * loopback only, is bounded in time (`durationMs`) and in count, and stops by
 * itself; at the end it prints what it did as one JSON line.
 *
 *   node --import tsx test/abuse/attacker.ts '{"kind":"silent","port":8080,"durationMs":60000,...}'
 */
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { ConverseRequestSchema } from "../../src/gen/dialstack/partner/v1/session_pb.js";

interface Attack {
  readonly kind: "silent" | "slowloris" | "slowbody" | "preface" | "idle-h2" | "rapid-reset" | "sessions" | "empty-sessions" | "big-answers";
  readonly port: number;
  readonly durationMs: number;
  /** Connections, sessions or concurrent calls, by kind. */
  readonly count: number;
  /** Source addresses to spread connections over (127.0.0.x). */
  readonly sources?: readonly string[];
  readonly key?: string;
  readonly botId?: string;
  /** After a close, how long before the connection is opened again. */
  readonly reconnectMs?: number;
  /** Rapid reset: streams per second to aim at, all workers together. */
  readonly rate?: number;
}

const attack = JSON.parse(process.argv[2]!) as Attack;
const stats: Record<string, number> = { opened: 0, closedByServer: 0, refused: 0 };
const endAt = performance.now() + attack.durationMs;
const over = () => performance.now() >= endAt;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sources = attack.sources ?? ["127.0.0.2"];
const bump = (name: string, by = 1) => (stats[name] = (stats[name] ?? 0) + by);

/** Keeps `count` raw connections open, each fed by `feed`, reopening a closed one after `reconnectMs`. */
async function holdSockets(feed: (socket: net.Socket) => (() => void) | void): Promise<void> {
  const open = new Set<net.Socket>();
  const openOne = (i: number) => {
    if (over()) return;
    const socket = net.connect({ host: "127.0.0.1", port: attack.port, localAddress: sources[i % sources.length] });
    let stop: (() => void) | void;
    let connected = false;
    // Read (and drop) what the server sends, so that its closing is seen.
    socket.resume();
    socket.on("connect", () => {
      connected = true;
      bump("opened");
      open.add(socket);
      stop = feed(socket);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      stop?.();
      open.delete(socket);
      if (!connected) bump("refused");
      else if (!over()) bump("closedByServer");
      setTimeout(() => openOne(i), attack.reconnectMs ?? 1000).unref();
    });
  };
  for (let i = 0; i < attack.count; i++) {
    openOne(i);
    if (i % 50 === 49) await sleep(5);
  }
  let peak = 0;
  while (!over()) {
    peak = Math.max(peak, open.size);
    await sleep(200);
  }
  stats.peakOpen = peak;
  for (const s of open) s.destroy();
}

function drip(socket: net.Socket, first: string, every: string, ms: number): () => void {
  socket.write(first);
  const timer = setInterval(() => socket.write(every), ms);
  return () => clearInterval(timer);
}

/** A gRPC frame holding one message. */
function grpcFrame(bytes: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + bytes.length);
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}

async function rapidReset(): Promise<void> {
  let sessions = 0;
  const connect = (): http2.ClientHttp2Session => {
    sessions++;
    const s = http2.connect(`http://127.0.0.1:${attack.port}`, { localAddress: sources[sessions % sources.length] } as http2.SecureClientSessionOptions);
    s.on("error", () => {});
    s.on("goaway", (code) => code === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM && bump("enhanceYourCalm"));
    return s;
  };
  const started = performance.now();
  const perWorker = (attack.rate ?? Infinity) / attack.count;
  const workers = Array.from({ length: attack.count }, async () => {
    let session = connect();
    let sent = 0;
    while (!over()) {
      // Paced to the aimed rate: ahead of it, wait.
      const ahead = sent / perWorker - (performance.now() - started) / 1000;
      if (ahead > 0) await sleep(ahead * 1000);
      if (session.closed || session.destroyed) {
        await sleep(attack.reconnectMs ?? 0);
        session = connect();
        continue;
      }
      // A burst of streams, each reset at once, then a turn of the loop so the frames go out.
      for (let i = 0; i < 50; i++) {
        try {
          const stream = session.request({ ":method": "POST", ":path": "/v1/availability/search", authorization: `Bearer ${attack.key}`, "content-type": "application/json" });
          stream.on("error", () => {});
          stream.close(http2.constants.NGHTTP2_CANCEL);
          bump("streams");
          sent++;
        } catch {
          break;
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    session.destroy();
  });
  await Promise.all(workers);
  stats.sessions = sessions;
  stats.streamsPerSecond = Math.round(stats.streams! / (attack.durationMs / 1000));
}

async function openSessions(empty: boolean): Promise<void> {
  const perConnection = 100;
  const connections: http2.ClientHttp2Session[] = [];
  const start = grpcFrame(toBinary(ConverseRequestSchema, create(ConverseRequestSchema, { requestId: "s", op: { case: "start", value: { botId: attack.botId! } } })));
  const emptyMessage = grpcFrame(toBinary(ConverseRequestSchema, create(ConverseRequestSchema, { requestId: "e" })));
  const timers: NodeJS.Timeout[] = [];
  let ended = 0;
  const streams: http2.ClientHttp2Stream[] = [];
  for (let i = 0; i < attack.count && !over(); i++) {
    if (i % perConnection === 0) {
      const c = http2.connect(`http://127.0.0.1:${attack.port}`, { localAddress: sources[connections.length % sources.length] } as http2.SecureClientSessionOptions);
      c.on("error", () => {});
      connections.push(c);
    }
    const c = connections[connections.length - 1]!;
    const stream = c.request({
      ":method": "POST",
      ":path": "/dialstack.partner.v1.BotSessionService/Converse",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${attack.key}`,
    });
    streams.push(stream);
    stream.on("error", () => {});
    let answers = 0;
    stream.on("data", () => {
      if (answers++ === 0) bump("started");
    });
    stream.on("trailers", (t) => bump(`ended:${String(t["grpc-message"] ?? t["grpc-status"]).slice(0, 40)}`));
    stream.on("close", () => ended++);
    stream.write(start);
    if (empty) {
      const t = setInterval(() => !stream.closed && stream.write(emptyMessage), 100);
      timers.push(t);
    }
    if (i % 200 === 199) await sleep(20);
  }
  stats.opened = streams.length;
  while (!over() && ended < streams.length) await sleep(200);
  stats.endedByServer = ended;
  for (const t of timers) clearInterval(t);
  for (const c of connections) c.destroy();
}

async function bigAnswers(): Promise<void> {
  const session = http2.connect(`http://127.0.0.1:${attack.port}`, { localAddress: sources[0] } as http2.SecureClientSessionOptions);
  session.on("error", () => {});
  const body = JSON.stringify({ bot_id: attack.botId, query: { filter: { start_at_range: { start_at: "2030-01-07T09:00:00Z", end_at: "2030-01-07T17:00:00Z" } } } });
  const one = () =>
    new Promise<void>((resolve) => {
      const s = session.request({ ":method": "POST", ":path": "/v1/availability/search", authorization: `Bearer ${attack.key}`, "content-type": "application/json" });
      let size = 0;
      s.on("data", (d: Buffer) => (size += d.length));
      s.on("response", (h) => bump(`status:${h[":status"]}`));
      s.on("close", () => {
        bump("bytes", size);
        resolve();
      });
      s.on("error", () => {});
      s.end(body);
    });
  await Promise.all(Array.from({ length: attack.count }, async () => {
    while (!over()) await one();
  }));
  session.destroy();
}

switch (attack.kind) {
  case "silent":
    await holdSockets(() => {});
    break;
  case "slowloris":
    await holdSockets((s) => drip(s, "GET /healthz HTTP/1.1\r\nHost: gw\r\n", "X", 1000));
    break;
  case "slowbody":
    await holdSockets((s) => drip(s, `POST /v1/availability/search HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${attack.key}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{`, " ", 1000));
    break;
  case "preface":
    await holdSockets((s) => void s.write("PRI * HTTP/2.0\r\n\r\n"));
    break;
  case "idle-h2":
    // A full preface and an empty SETTINGS frame, then nothing.
    await holdSockets((s) => void s.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])])));
    break;
  case "rapid-reset":
    await rapidReset();
    break;
  case "sessions":
    await openSessions(false);
    break;
  case "empty-sessions":
    await openSessions(true);
    break;
  case "big-answers":
    await bigAnswers();
    break;
}
process.stdout.write(JSON.stringify(stats) + "\n");
process.exit(0);
