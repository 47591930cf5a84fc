import type { JsonObject, JsonValue } from './json.js';

/** First or last event of a page: enough to describe it without handing over the events. */
export interface EventRef {
  uuid: string | null;
  published: string | null;
}

/** What the collection logic learns about a fetched page. Bulk event data stays with the host. */
export interface PageMeta {
  /** HTTP status of the response (always 200 here: errors are handled by the host). */
  status: number;
  /** The URL that was requested. */
  url: string;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
  /** Parsed `Link` header: relation name -> URL (e.g. `next`, `self`). */
  links: Record<string, string>;
  /** Number of events in the page. */
  count: number;
  first: EventRef | null;
  last: EventRef | null;
}

export interface PageDecision {
  /** State to commit once the page is delivered to every sink. */
  state: JsonObject;
  /** The next URL to fetch in this cycle, or null when the source is caught up. */
  next: string | null;
}

/**
 * The Okta-specific decisions of collection, kept apart from transport and durability: which request
 * starts a cycle, what comes next, when a cycle is caught up, what state to checkpoint, per-event tags.
 * The host validates every URL it returns (same origin as the configured org) before sending the token.
 */
export interface CollectionLogic {
  /** Human name for errors and logs, e.g. "okta.lua (built-in)" or a script path. */
  readonly name: string;
  /** Fields the host adds to every event (e.g. `_okta_event_type`). */
  readonly tags: Readonly<Record<string, JsonValue>>;
  /**
   * The state a source starts from when nothing was committed yet. The host commits it before the first
   * request, so a crash before the first page cannot move a "now" start forward and skip events.
   */
  initialState(input: { startFrom: string | null; now: string }): Promise<JsonObject>;
  /** The first request of a cycle, from the committed state: an absolute URL or a path on the org. */
  cycleRequest(state: JsonObject): Promise<string>;
  /** Called after every page with the state the page was fetched from. */
  afterPage(state: JsonObject, page: PageMeta): Promise<PageDecision>;
  /**
   * Optional per-event hook, called once per page with the page's events (parsed only when present).
   * Returns one entry per event: the event (possibly changed) or null to drop it.
   */
  transform?: (events: JsonObject[]) => Promise<(JsonObject | null)[]>;
  close(): Promise<void>;
}
