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
  /**
   * The same hook on a page's bytes as Okta sent them, when the logic can work on those: an event the hook
   * leaves unchanged (or only adds fields to) keeps its bytes, and the events cross to a script's thread
   * without being parsed here. Preferred over `transform` when both exist.
   */
  transformPage?: (events: RawEvents) => Promise<TransformedEvents>;
  close(): Promise<void>;
}

/** A page's events as received: event i is `body[offsets[2i], offsets[2i + 1])`, a JSON object. */
export interface RawEvents {
  body: Uint8Array;
  offsets: Uint32Array;
  count: number;
  /**
   * Per event, 1 when one of its top-level keys is written with a backslash escape (its raw bytes then
   * cannot show that a key is absent), else 0; without it, any backslash in an event counts.
   */
  escapedKeys?: Uint8Array;
}

/** What a page transform did to each event. */
export const EventEdit = {
  DROPPED: 0,
  /** Written as received. */
  UNCHANGED: 1,
  /** Written as received plus the members `text[i]` (`"k":v,...`), spliced before its closing brace. */
  ADDED: 2,
  /** Replaced by the JSON object `text[i]`. */
  REPLACED: 3,
} as const;

/** One `EventEdit` per event, and the text `ADDED` and `REPLACED` carry. Tag keys never appear in `text`. */
export interface TransformedEvents {
  edits: Uint8Array;
  text: (string | undefined)[];
  /**
   * The page's bytes, when they were moved to another thread and back (the `RawEvents` body is then
   * detached): render from these.
   */
  body?: Uint8Array;
}
