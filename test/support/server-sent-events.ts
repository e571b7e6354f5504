/** Reads a Server-Sent Events body into its events, as a browser's EventSource would. */
export interface ServerSentEvent {
  readonly event: string;
  readonly data: string;
}

export function parseEvents(text: string): ServerSentEvent[] {
  return text
    .split(/\r?\n\r?\n/)
    .filter((block) => block.trim() !== "")
    .map((block) => {
      let event = "message";
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      return { event, data: data.join("\n") };
    });
}
