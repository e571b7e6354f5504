/**
 * Commands sent in one turn of the event loop reach Redis in one write.
 *
 * ioredis writes each command to its socket as it is sent: without more, 64
 * bookings claiming their keys in one turn cost 64 system calls. Its
 * auto-pipelining batches them, but by building a `Pipeline` per turn, whose
 * set-up and bookkeeping cost more than the write it saves when one call is
 * in flight. Here the first command of a turn corks the socket, and a
 * `setImmediate` uncorks it once the turn's I/O callbacks have run (as
 * auto-pipelining's flush does): the commands that the requests read in one
 * poll of the event loop leave in one `writev`, and a lone command costs one
 * cork and one immediate more than a plain write.
 *
 * This is for the connection to a single Redis. A Redis Cluster client keeps
 * its auto-pipelining (see `clusterOptions` in redis-connection.ts): it
 * routes each command to a node connection that opens on first use and
 * refuses commands while opening, which its pipelines avoid for a turn's
 * commands.
 *
 * Nothing else changes: each command is still written, queued and answered
 * by ioredis as a plain command, in the order sent. A socket that closes
 * while corked loses what it held as it would have lost what it was
 * writing; ioredis fails those commands with the connection.
 */
import type { Redis } from "ioredis";

type SendCommand = Redis["sendCommand"];

export function batchWritesPerTick(redis: Redis): void {
  const send = redis.sendCommand.bind(redis) as SendCommand;
  let corked: Redis["stream"] | undefined;
  redis.sendCommand = ((command: Parameters<SendCommand>[0], stream?: Parameters<SendCommand>[1]) => {
    const socket = redis.stream;
    if (socket !== corked && socket !== undefined && redis.status === "ready" && socket.writable) {
      corked = socket;
      socket.cork();
      setImmediate(() => {
        corked = undefined;
        socket.uncork();
      });
    }
    return send(command, stream);
  }) as SendCommand;
}
