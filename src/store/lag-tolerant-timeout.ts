/**
 * A Redis command timeout that event-loop lag alone does not trip.
 *
 * ioredis's `commandTimeout` is a plain timer. When the event loop was busy
 * past it (a burst of requests, a large answer being parsed), the timer phase
 * of the next turn runs before the poll phase that would read Redis's answer,
 * already waiting in the socket: the command fails although Redis answered in
 * time, and the caller is told the store is unavailable. Here the timer only
 * starts the verdict; it is given after one more poll phase (`setImmediate`
 * runs after it), so an answer that arrived in time is read first. A Redis
 * that does not answer still fails the command after the timeout (plus one
 * turn of the loop).
 */
import type { Redis } from "ioredis";

type Command = Parameters<Redis["sendCommand"]>[0] & { isSettled?: boolean };

/** A command Redis did not answer within the connection's command timeout. */
export class CommandTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super("Command timed out");
    this.name = "CommandTimeoutError";
  }
}

export function useLagTolerantCommandTimeout(redis: Redis, timeoutMs: number): void {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command: Command, stream?: Parameters<Redis["sendCommand"]>[1]) => {
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (command.isSettled !== true) command.reject(new CommandTimeoutError(timeoutMs));
      });
    }, timeoutMs);
    const settled = () => clearTimeout(timer);
    command.promise.then(settled, settled);
    return send(command, stream);
  };
}
