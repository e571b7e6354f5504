/**
 * The ids of the console page's elements: the page is rendered on the server
 * (console-page.ts) and wired up in the browser (browser/console.ts), and
 * both name the elements through this one list.
 */
export const PAGE_IDS = {
  partnerKey: "partner-key",
  botId: "bot-id",
  callerPhone: "caller-phone",
  lookupForm: "lookup-form",
  lookupResult: "lookup-result",
  customerName: "customer-name",
  customerPhone: "customer-phone",
  searchForm: "search-form",
  day: "day",
  days: "days",
  searchStatus: "search-status",
  slots: "slots",
  result: "result",
  calls: "calls",
} as const;
