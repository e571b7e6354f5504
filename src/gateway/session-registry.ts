/**
 * The bot sessions open in this gateway process, by partner. A session is
 * long-lived and authenticated once, when it opens, so this is where the
 * bounds that outlive a single call are kept:
 *
 * - at most `maxPerPartner` open sessions per partner (each holds memory and
 *   a stream), so one partner's key cannot exhaust the process;
 * - a partner whose key was rotated or deleted loses its open sessions: every
 *   partner with open sessions is looked up again in the store (not the
 *   cache) every half directory-cache TTL, and at once when the directory
 *   announces a change, and its sessions are ended with `unauthorized`. A
 *   store that cannot be read ends nothing: a Redis outage is not a revoked key.
 */
import { GatewayError } from "../errors.js";
import type { Partner } from "../store/directory-store.js";

/** Looks a partner up in the store itself, bypassing any cache: undefined when its key no longer opens it. */
export type PartnerCheck = (partner: Partner) => Promise<boolean>;

export interface SessionRegistryOptions {
  readonly maxPerPartner: number;
  /** How often partners with open sessions are looked up again. */
  readonly recheckMs: number;
  readonly stillValid: PartnerCheck;
}

/** What an open session hands the registry: how to end it. */
export interface OpenSession {
  end(error: GatewayError): void;
}

interface PartnerSessions {
  readonly partner: Partner;
  readonly sessions: Set<OpenSession>;
}

export class SessionRegistry {
  private readonly byKey = new Map<string, PartnerSessions>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private checkAgain = false;

  constructor(private readonly options: SessionRegistryOptions) {}

  /** Open sessions now, all partners together. */
  get size(): number {
    let n = 0;
    for (const p of this.byKey.values()) n += p.sessions.size;
    return n;
  }

  /** Registers a session; `too_many_sessions` when the partner already holds the most it may. Returns its release. */
  open(partner: Partner, session: OpenSession): () => void {
    const key = `${partner.id}\n${partner.keyHash}`;
    let entry = this.byKey.get(key);
    if (entry === undefined) {
      entry = { partner, sessions: new Set() };
      this.byKey.set(key, entry);
    }
    const held = this.countFor(partner.id);
    if (held >= this.options.maxPerPartner) {
      if (entry.sessions.size === 0) this.byKey.delete(key);
      throw GatewayError.of("too_many_sessions", `at most ${this.options.maxPerPartner} bot sessions may be open at once; close one, or retry shortly`, {
        retryAfterSeconds: 1,
      });
    }
    entry.sessions.add(session);
    this.schedule();
    const sessions = entry.sessions;
    return () => {
      sessions.delete(session);
      if (sessions.size === 0 && this.byKey.get(key)?.sessions === sessions) this.byKey.delete(key);
      if (this.byKey.size === 0) this.stop();
    };
  }

  /** Looks every partner with open sessions up again now (the directory announced a change). */
  recheck(): void {
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    void this.check();
  }

  close(): void {
    this.stop();
  }

  private countFor(partnerId: string): number {
    let n = 0;
    for (const p of this.byKey.values()) if (p.partner.id === partnerId) n += p.sessions.size;
    return n;
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.recheck(), this.options.recheckMs);
    this.timer.unref();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async check(): Promise<void> {
    this.checking = true;
    try {
      for (const entry of [...this.byKey.values()]) {
        if (entry.sessions.size === 0) continue;
        const valid = await this.options.stillValid(entry.partner).catch(() => true);
        if (valid) continue;
        const error = GatewayError.of("unauthorized", "the partner key of this session was rotated or revoked; open a new session with the current key");
        for (const session of [...entry.sessions]) session.end(error);
      }
    } finally {
      this.checking = false;
      if (this.checkAgain) {
        this.checkAgain = false;
        void this.check();
      }
    }
  }
}
