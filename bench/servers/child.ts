/**
 * The contract between the benchmark and the servers it starts as child
 * processes: a server announces its port as one JSON line on stdout, and
 * exits as soon as its stdin closes, so a benchmark that dies for any reason
 * leaves no server behind.
 */
export function announce(port: number): void {
  process.stdout.write(JSON.stringify({ port }) + "\n");
}

export function exitWithParent(): void {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
  process.on("SIGTERM", () => process.exit(0));
}
