/**
 * The console's HTML: plain, accessible markup that works as a document
 * before its script runs. Every field has a `<label>`, every control is a
 * real `<button>`, and the regions the script fills are live regions, so a
 * screen reader hears slots and results arrive. Nothing here is inline
 * script or style: the page's Content-Security-Policy forbids both.
 *
 * The fields have no `name`: were the script ever not to run, a form could
 * not put the partner key into a URL (and `form-action 'none'` stops any
 * submission anyway).
 */
import { E164_PATTERN } from "../gateway/phone-number.js";
import { PAGE_IDS as ID } from "./page-ids.js";

/** A built asset as the page links it: its URL and its Subresource Integrity hash. */
export interface LinkedAsset {
  readonly url: string;
  readonly integrity: string;
}

export interface ConsolePageAssets {
  readonly script: LinkedAsset;
  readonly style: LinkedAsset;
}

const field = (id: string, label: string, attributes: string, hint = "") =>
  `<div class="field"><label for="${id}">${label}</label>${hint === "" ? "" : `<span class="hint" id="${id}-hint">${hint}</span>`}<input id="${id}" ${attributes}${
    hint === "" ? "" : ` aria-describedby="${id}-hint"`
  }></div>`;

const E164 = `type="tel" pattern="${E164_PATTERN}" inputmode="tel"`;

/** How many days one search may cover, the choices of the Days field (each day is one window of the stream). */
const MAX_SEARCH_DAYS = 7;

export function renderConsolePage({ script, style }: ConsolePageAssets): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Console · DialStack Partner API</title>
<link rel="stylesheet" href="${style.url}" integrity="${style.integrity}">
<script type="module" src="${script.url}" integrity="${script.integrity}"></script>
</head>
<body>
<header class="top">
<div>
<h1>DialStack console</h1>
<p>Look up a caller, search a bot's free slots and book one, on this gateway, over gRPC-Web: what a browser tool sees.</p>
</div>
<nav aria-label="Elsewhere"><a href="/docs">API reference</a></nav>
</header>
<noscript><p class="failed">The console needs JavaScript.</p></noscript>
<main class="layout">
<div class="column">
<section class="card" aria-labelledby="partner-title">
<h2 id="partner-title">Partner</h2>
<form autocomplete="off" aria-labelledby="partner-title">
${field(ID.partnerKey, "Partner key", 'type="password" required autocomplete="off" spellcheck="false" placeholder="sk_ptnr_…"', "Kept in this page's memory only, sent only to this gateway.")}
${field(ID.botId, "Bot ID", 'type="text" required autocomplete="off" spellcheck="false" placeholder="bot_…"')}
</form>
</section>
<section class="card" aria-labelledby="caller-title">
<h2 id="caller-title">Caller</h2>
<form id="${ID.lookupForm}" autocomplete="off" aria-labelledby="caller-title">
${field(ID.callerPhone, "Caller phone", `${E164} required autocomplete="off" placeholder="+14155550123"`, "E.164: + and 8 to 15 digits.")}
<button type="submit">Look up caller</button>
</form>
<div id="${ID.lookupResult}" class="output" role="status"></div>
</section>
<section class="card" aria-labelledby="customer-title">
<h2 id="customer-title">Customer</h2>
<form autocomplete="off" aria-labelledby="customer-title">
${field(ID.customerName, "Customer name", 'type="text" required autocomplete="off"')}
${field(ID.customerPhone, "Customer phone", `${E164} required autocomplete="off" placeholder="+15551234567"`, "Who the booking is for; E.164.")}
</form>
</section>
</div>
<div class="column">
<section class="card" aria-labelledby="slots-title">
<h2 id="slots-title">Free slots</h2>
<form id="${ID.searchForm}" class="inline" autocomplete="off" aria-labelledby="slots-title">
${field(ID.day, "Day (UTC)", 'type="date" required')}
<div class="field"><label for="${ID.days}">Days</label><select id="${ID.days}">${Array.from({ length: MAX_SEARCH_DAYS }, (_, i) => `<option>${i + 1}</option>`).join("")}</select></div>
<button type="submit">Search slots</button>
</form>
<div id="${ID.searchStatus}" class="output" role="status"></div>
<div id="${ID.slots}"></div>
</section>
<section class="card" aria-labelledby="result-title">
<h2 id="result-title">Booking</h2>
<div id="${ID.result}" class="output" aria-live="polite"><p class="quiet">Pick a slot to book it for the customer.</p></div>
</section>
<section class="card" aria-labelledby="calls-title">
<h2 id="calls-title">Calls</h2>
<ol id="${ID.calls}" class="calls"></ol>
</section>
</div>
</main>
</body>
</html>
`;
}
