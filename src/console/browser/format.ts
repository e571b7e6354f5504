/**
 * How the console writes times: in UTC, as the API speaks, so what the page
 * shows is what a partner sees in the JSON.
 */
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

const time = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", hour: "2-digit", minute: "2-digit" });
const day = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", weekday: "long", day: "numeric", month: "long", year: "numeric" });

export const formatTime = (t: Timestamp): string => time.format(timestampDate(t));

export const formatDay = (t: Timestamp): string => day.format(timestampDate(t));

/** RFC 3339, the way the REST API writes it: `2030-01-07T09:00:00Z`. */
export const formatInstant = (t: Timestamp | undefined): string => (t === undefined ? "" : timestampDate(t).toISOString().replace(".000Z", "Z"));

/** The next weekday (UTC) as `YYYY-MM-DD`: a day on which a test platform has slots. */
export function nextWeekday(now = new Date()): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  do d.setUTCDate(d.getUTCDate() + 1);
  while (d.getUTCDay() === 0 || d.getUTCDay() === 6);
  return d.toISOString().slice(0, 10);
}
