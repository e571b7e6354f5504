/**
 * Ends the benchmark's processes when the benchmark itself goes away, even
 * when it is killed outright. The benchmark writes `+<pid>` for each process
 * it starts and `-<pid>` for each that ended; when this process's stdin
 * closes, whatever is still listed gets SIGTERM, then SIGKILL.
 */
import { createInterface } from "node:readline";

const pids = new Set<number>();

function kill(signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      pids.delete(pid);
    }
  }
}

createInterface({ input: process.stdin })
  .on("line", (line) => {
    const pid = Number(line.slice(1));
    if (!Number.isInteger(pid) || pid <= 0) return;
    if (line.startsWith("+")) pids.add(pid);
    else pids.delete(pid);
  })
  .on("close", () => {
    if (pids.size === 0) process.exit(0);
    kill("SIGTERM");
    setTimeout(() => {
      kill("SIGKILL");
      process.exit(0);
    }, 3000);
  });
process.on("SIGTERM", () => {});
process.on("SIGINT", () => {});
