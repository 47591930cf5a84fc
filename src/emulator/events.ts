import type { JsonObject } from '../core/json.js';
import { createRandom, type Random } from './random.js';

/**
 * One LogEvent as the emulator stores it: the exact bytes it will serve plus the few fields it filters
 * and sorts on. `raw` is compact JSON and is never re-serialised, so byte-exact checks compare `raw`.
 */
export interface EventRecord {
  readonly uuid: string;
  readonly published: string;
  readonly publishedMs: number;
  readonly eventType: string;
  readonly raw: Buffer;
}

export interface GenerateOptions {
  /** `published` of the first event, epoch ms. Default: so that the last event is about a second old. */
  publishedStart?: number;
  /** Milliseconds between consecutive `published` values (between groups, see below). Default 1. */
  stepMs?: number;
  /** Size of the runs of consecutive events that share one `published` millisecond. Default 1 (no sharing). */
  sameMillisecondGroups?: number;
  /**
   * Fraction of events whose `published` is earlier than their predecessor's, as polling returns events
   * that were delayed inside Okta. `true` means 0.05. Default: none.
   */
  outOfOrder?: number | boolean;
  /** Makes the content (and, with `publishedStart`, everything) reproducible. */
  seed?: number;
  /**
   * Every n-th event carries content a byte-exact collector must preserve (unicode, escapes, U+2028, an
   * unknown field with `2.50`). 0 disables it. Default 50; the second event is always one of them.
   */
  trickyEvery?: number;
}

/** The kinds of awkward content `generateEvents` rotates through, in this order. */
export const TRICKY_KINDS = ['unicode', 'escapes', 'line-separators', 'unknown-field'] as const;
export type TrickyKind = (typeof TRICKY_KINDS)[number];

/** The raw text of the unknown field: numbers written the way a re-serialiser would not write them. */
export const UNKNOWN_FIELD_JSON =
  '"newFieldFromOkta":{"x":[1,2.50,null,true],"big":12345678901234567890,"exp":1.0E+2,"neg":-0.0,"nested":{"empty":[],"obj":{}}}';

/** Parses a record's bytes. Numbers such as `2.50` lose their spelling here: compare `raw` for exactness. */
export function toLogEvent(record: EventRecord): JsonObject {
  return JSON.parse(record.raw.toString('utf8')) as JsonObject;
}

/** Which tricky content an event carries, if any (by its index in a `generateEvents` call). */
export function trickyKindAt(index: number, trickyEvery = 50): TrickyKind | null {
  if (trickyEvery <= 0 || index % trickyEvery !== 1 % trickyEvery) return null;
  return TRICKY_KINDS[Math.floor(index / trickyEvery) % TRICKY_KINDS.length] ?? null;
}

/**
 * Wraps any LogEvent (object, JSON text or bytes) as a record. Text and bytes are kept exactly as given,
 * so fixtures with odd spellings survive; `uuid` and `published` must be present.
 */
export function recordFromEvent(event: JsonObject | string | Buffer): EventRecord {
  let raw: Buffer;
  let parsed: unknown;
  if (Buffer.isBuffer(event)) {
    raw = event;
    parsed = JSON.parse(event.toString('utf8'));
  } else if (typeof event === 'string') {
    raw = Buffer.from(event, 'utf8');
    parsed = JSON.parse(event);
  } else {
    raw = Buffer.from(JSON.stringify(event), 'utf8');
    parsed = event;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TypeError('A LogEvent must be a JSON object.');
  }
  const { uuid, published, eventType } = parsed as Record<string, unknown>;
  if (typeof uuid !== 'string' || typeof published !== 'string') {
    throw new TypeError('A LogEvent needs string "uuid" and "published" fields.');
  }
  // Okta's own reference example carries "2017-09-31", which Date.parse rolls over to October 1st;
  // sorting by that is good enough and the text itself is served untouched.
  const publishedMs = Date.parse(published);
  if (Number.isNaN(publishedMs)) throw new TypeError(`Unparseable "published": ${published}`);
  return { uuid, published, publishedMs, eventType: typeof eventType === 'string' ? eventType : '', raw };
}

interface EventKind {
  eventType: string;
  legacy: string | null;
  message: string;
  severity: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  requestUri: string;
  targets: 'none' | 'user' | 'app' | 'group' | 'user+group' | 'app+user';
  failure?: string;
}

const KINDS: readonly EventKind[] = [
  {
    eventType: 'user.session.start',
    legacy: 'core.user_auth.login_success',
    message: 'User login to Okta',
    severity: 'INFO',
    requestUri: '/idp/idx/authenticators/poll',
    targets: 'user',
  },
  {
    eventType: 'user.session.start',
    legacy: 'core.user_auth.login_failed',
    message: 'User login to Okta',
    severity: 'WARN',
    requestUri: '/idp/idx/identify',
    targets: 'user',
    failure: 'INVALID_CREDENTIALS',
  },
  {
    eventType: 'user.authentication.sso',
    legacy: 'app.auth.sso',
    message: 'User single sign on to app',
    severity: 'INFO',
    requestUri: '/app/salesforce/exk1fcia6d6EMsf331d8/sso/saml',
    targets: 'app+user',
  },
  {
    eventType: 'user.authentication.auth_via_mfa',
    legacy: 'core.user.factor.attempt_success',
    message: 'Authentication of user via MFA',
    severity: 'INFO',
    requestUri: '/idp/idx/challenge/answer',
    targets: 'user',
  },
  {
    eventType: 'policy.evaluate_sign_on',
    legacy: null,
    message: 'Evaluation of sign-on policy',
    severity: 'INFO',
    requestUri: '/idp/idx/introspect',
    targets: 'app',
  },
  {
    eventType: 'user.session.end',
    legacy: 'core.user_auth.logout_success',
    message: 'User logout from Okta',
    severity: 'INFO',
    requestUri: '/login/signout',
    targets: 'none',
  },
  {
    eventType: 'group.user_membership.add',
    legacy: 'core.user_group_member.user_add',
    message: 'Add user to group membership',
    severity: 'INFO',
    requestUri: '/api/v1/groups/00g1emaKYZTWRYYRRTSK/users/00u1qw1mqitPHM8AJ0g7',
    targets: 'user+group',
  },
  {
    eventType: 'application.user_membership.add',
    legacy: 'app.generic.provision.assign_user_to_app',
    message: 'Add user to application membership',
    severity: 'INFO',
    requestUri: '/api/v1/apps/0oa1gjh63g214q0Hq0g4/users',
    targets: 'app+user',
  },
  {
    eventType: 'user.account.update_password',
    legacy: 'core.user.config.password_update.success',
    message: 'User update password for Okta',
    severity: 'INFO',
    requestUri: '/api/v1/users/00u1qw1mqitPHM8AJ0g7/credentials/change_password',
    targets: 'user',
  },
  {
    eventType: 'user.mfa.factor.activate',
    legacy: 'core.user.factor.activate',
    message: 'User set up MFA factor',
    severity: 'INFO',
    requestUri: '/idp/idx/credential/enroll',
    targets: 'user',
  },
  {
    eventType: 'system.api_token.create',
    legacy: 'api.token.create',
    message: 'Create API token',
    severity: 'INFO',
    requestUri: '/api/internal/tokens',
    targets: 'none',
  },
  {
    eventType: 'core.concurrency.org.limit.violation',
    legacy: 'core.concurrency.org.limit.violation',
    message: 'Too many requests in flight',
    severity: 'WARN',
    requestUri: '/api/v1/users',
    targets: 'none',
  },
  {
    eventType: 'security.threat.detected',
    legacy: 'security.threat.detected',
    message: 'Request from suspicious actor',
    severity: 'WARN',
    requestUri: '/api/v1/authn',
    targets: 'none',
    failure: 'Password Spray',
  },
];

interface Person {
  id: string;
  login: string;
  name: string;
}

const PEOPLE: readonly Person[] = [
  ['00u1qw1mqitPHM8AJ0g7', 'admin@example.com', 'John Doe'],
  ['00u2ab3cdEFghIJkl0g7', 'ana.silva@example.com', 'Ana Silva'],
  ['00u3xk9TRvpLmQ2wz0g7', 'kenji.sato@example.com', 'Kenji Sato'],
  ['00u4ZpQ7nnYtRk1bc0g7', 'fatima.zahra@example.com', 'Fatima Zahra'],
  ['00u5mN8kLpOiUy7tr0g7', 'lars.eriksson@example.com', 'Lars Eriksson'],
  ['00u6hG5fDsAqWe3er0g7', 'priya.nair@example.com', 'Priya Nair'],
  ['00u7jK2lZxCvBn9mq0g7', 'svc-provisioning@example.com', 'Provisioning Service'],
  ['00u8pO1iUyTrEw4qa0g7', 'oliver.brown@example.com', 'Oliver Brown'],
].map(([id, login, name]) => ({ id: id!, login: login!, name: name! }));

const APPS: readonly { id: string; name: string; label: string }[] = [
  { id: '0oa1gjh63g214q0Hq0g4', name: 'salesforce', label: 'Salesforce.com' },
  { id: '0oa2kxq9XbVzD4nPe0g4', name: 'slack', label: 'Slack' },
  { id: '0oa3ytR5mWqLs8uJh0g4', name: 'github_enterprise', label: 'GitHub Enterprise' },
  { id: '0oa4bnM2cVxZa7sDf0g4', name: 'oidc_client', label: 'Internal Portal' },
];

const GROUPS: readonly { id: string; name: string }[] = [
  { id: '00g1emaKYZTWRYYRRTSK', name: 'Engineering' },
  { id: '00g2fnbLZAUXSZZSSUTL', name: 'Finance' },
  { id: '00g3gocMABVYTAATTVUM', name: 'Everyone' },
];

const PLACES: readonly string[] = [
  ['San Francisco', 'California', 'United States', '94105', 37.7898, -122.3942],
  ['London', 'England', 'United Kingdom', 'EC2V', 51.5142, -0.0931],
  ['Frankfurt am Main', 'Hesse', 'Germany', '60313', 50.1155, 8.6842],
  ['Sydney', 'New South Wales', 'Australia', '2000', -33.8688, 151.2093],
  ['Bengaluru', 'Karnataka', 'India', '560001', 12.9716, 77.5946],
  ['Toronto', 'Ontario', 'Canada', 'M5H', 43.6532, -79.3832],
].map(([city, state, country, postalCode, lat, lon]) =>
  JSON.stringify({ city, state, country, postalCode, geolocation: { lat, lon } }),
);

const AGENTS: readonly string[] = [
  [
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    'Mac OS X',
    'CHROME',
  ],
  [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0',
    'Windows 10',
    'EDGE_CHROMIUM',
  ],
  ['Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0', 'Linux', 'FIREFOX'],
  [
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
    'iOS',
    'MOBILE_SAFARI',
  ],
  ['okta-sdk-java/8.2.1 java/17.0.9 Linux/5.15.0', 'Linux', 'UNKNOWN'],
].map(([rawUserAgent, os, browser]) => JSON.stringify({ rawUserAgent, os, browser }));

const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const B64URL = B62 + '-_';
const HEX = '0123456789abcdef';

function chars(rnd: Random, alphabet: string, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[rnd.int(alphabet.length)];
  return s;
}

const BYTE_HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** 27 base64url characters, as Okta's transaction ids; five characters per draw keeps this cheap. */
function transactionId(rnd: Random): string {
  let s = '';
  while (s.length < 27) {
    const n = rnd.u32();
    s +=
      B64URL[n & 63]! +
      B64URL[(n >>> 6) & 63]! +
      B64URL[(n >>> 12) & 63]! +
      B64URL[(n >>> 18) & 63]! +
      B64URL[(n >>> 24) & 63]!;
  }
  return s.slice(0, 27);
}

function hex8(n: number): string {
  return (
    BYTE_HEX[(n >>> 24) & 255]! +
    BYTE_HEX[(n >>> 16) & 255]! +
    BYTE_HEX[(n >>> 8) & 255]! +
    BYTE_HEX[n & 255]!
  );
}

function ipv4(rnd: Random): string {
  // Documentation and carrier ranges only: generated events never name someone's real address.
  const prefix = rnd.pick(['198.51.100', '203.0.113', '192.0.2', '100.64.12']);
  return `${prefix}.${1 + rnd.int(254)}`;
}

function targetJson(type: string, id: string, alternateId: string, displayName: string): string {
  return `{"id":"${id}","type":"${type}","alternateId":${JSON.stringify(alternateId)},"displayName":${JSON.stringify(displayName)},"detailEntry":null}`;
}

/** Placeholders for the per-event parts of a template; none of them can occur in generated content. */
const SLOT_PUBLISHED = '\ue000P\ue000';
const SLOT_UUID = '\ue000U\ue000';
const SLOT_TRANSACTION = '\ue000T\ue000';
const SLOT_PATTERN = /\ue000([PUT])\ue000/;
type Slot = 'P' | 'U' | 'T';

/** An event body with holes for `published`, `uuid` and the transaction id, all fixed-length ASCII. */
interface Template {
  eventType: string;
  segments: Buffer[];
  slots: Slot[];
  /** Total bytes once the holes are filled. */
  length: number;
}

const SLOT_LENGTH: Record<Slot, number> = { P: 24, U: 36, T: 27 };

function eventText(rnd: Random, kind: EventKind, tricky: TrickyKind | null): string {
  const actor = rnd.pick(PEOPLE);
  const ip = ipv4(rnd);
  const geo = rnd.pick(PLACES);
  const sessionId = '102' + chars(rnd, B64URL, 22);
  const dtHash = chars(rnd, HEX, 64);

  let actorName = JSON.stringify(actor.name);
  let agent = rnd.pick(AGENTS);
  let requestUri = JSON.stringify(kind.requestUri);
  let extraDebug = '';
  let extraTop = '';
  let targetName: string | null = null;
  switch (tricky) {
    case 'unicode':
      actorName = '"Zoë 東京 ✓"';
      targetName = 'Zoë 東京 ✓ 🔐 São Paulo';
      // Escaped spellings of non-ASCII text must stay escaped: re-encoding would change the bytes.
      extraDebug = ',"preferredName":"caf\\u00e9 \\ud83d\\ude00"';
      break;
    case 'escapes':
      agent =
        '{"rawUserAgent":"Mozilla/5.0 (Windows NT 10.0) \\"Quoted\\" C:\\\\Program Files\\\\Okta\\\\","os":"Windows 10","browser":"UNKNOWN"}';
      requestUri = '"\\/api\\/v1\\/authn?x=\\"1\\"&y=a\\\\b"';
      break;
    case 'line-separators':
      targetName = 'line\u2028separator\u2029paragraph';
      extraDebug = ',"message":"escaped\\u2028separator\\u2029and\\ttab"';
      break;
    case 'unknown-field':
      extraTop = ',' + UNKNOWN_FIELD_JSON;
      break;
    case null:
      break;
  }

  const targets: string[] = [];
  const app = rnd.pick(APPS);
  const grp = rnd.pick(GROUPS);
  const subject = rnd.pick(PEOPLE);
  if (kind.targets === 'app' || kind.targets === 'app+user') {
    targets.push(targetJson('AppInstance', app.id, app.name, app.label));
  }
  if (kind.targets === 'user' || kind.targets === 'user+group' || kind.targets === 'app+user') {
    targets.push(targetJson('User', subject.id, subject.login, targetName ?? subject.name));
  }
  if (kind.targets === 'user+group') targets.push(targetJson('UserGroup', grp.id, grp.name, grp.name));
  if (targetName !== null && targets.length === 0) {
    targets.push(targetJson('User', subject.id, subject.login, targetName));
  }

  const outcome =
    kind.failure === undefined
      ? '{"result":"SUCCESS","reason":null}'
      : `{"result":"FAILURE","reason":${JSON.stringify(kind.failure)}}`;
  return (
    `{"actor":{"id":"${actor.id}","type":"User","alternateId":${JSON.stringify(actor.login)},"displayName":${actorName},"detailEntry":null},` +
    `"client":{"userAgent":${agent},"zone":"null","device":"Computer","id":null,"ipAddress":"${ip}","geographicalContext":${geo}},` +
    `"device":null,` +
    `"authenticationContext":{"authenticationProvider":null,"credentialProvider":null,"credentialType":null,"issuer":null,"interface":null,"authenticationStep":0,"externalSessionId":"${sessionId}"},` +
    `"displayMessage":${JSON.stringify(kind.message)},"eventType":"${kind.eventType}","outcome":${outcome},"published":"${SLOT_PUBLISHED}",` +
    `"securityContext":{"asNumber":${64496 + rnd.int(15)},"asOrg":"example transit","isp":"example isp","domain":"example.net","isProxy":false},` +
    `"severity":"${kind.severity}",` +
    `"debugContext":{"debugData":{"requestId":"${SLOT_TRANSACTION}","dtHash":"${dtHash}","requestUri":${requestUri},"threatSuspected":"false","risk":"{level=LOW}","behaviors":"{New Geo-Location=NEGATIVE, New Device=NEGATIVE, New IP=POSITIVE, Velocity=NEGATIVE}"${extraDebug}}},` +
    `"legacyEventType":${kind.legacy === null ? 'null' : `"${kind.legacy}"`},` +
    `"transaction":{"type":"WEB","id":"${SLOT_TRANSACTION}","detail":{}},` +
    `"uuid":"${SLOT_UUID}","version":"0",` +
    `"request":{"ipChain":[{"ip":"${ip}","geographicalContext":${geo},"version":"V4","source":null}]},` +
    `"target":${targets.length === 0 ? 'null' : `[${targets.join(',')}]`}${extraTop}}`
  );
}

function makeTemplate(rnd: Random, tricky: TrickyKind | null): Template {
  const kind = rnd.pick(KINDS);
  const parts = eventText(rnd, kind, tricky).split(SLOT_PATTERN);
  const segments: Buffer[] = [];
  const slots: Slot[] = [];
  let length = 0;
  // split() with a capture group alternates text, slot letter, text, ...
  for (let k = 0; k < parts.length; k++) {
    const part = parts[k]!;
    if (k % 2 === 0) {
      const bytes = Buffer.from(part, 'utf8');
      segments.push(bytes);
      length += bytes.length;
    } else {
      slots.push(part as Slot);
      length += SLOT_LENGTH[part as Slot];
    }
  }
  return { eventType: kind.eventType, segments, slots, length };
}

/**
 * Fills templates into large shared buffers. Building and encoding a full JSON text per event, or one
 * `Buffer.from` per event (a fresh 8 KB pool every few events), made a million events take half a minute.
 */
class Slab {
  private buf = Buffer.allocUnsafe(0);
  private used = 0;

  fill(template: Template, values: Record<Slot, string>): Buffer {
    if (this.buf.length - this.used < template.length) {
      this.buf = Buffer.allocUnsafe(Math.max(4 << 20, template.length));
      this.used = 0;
    }
    const start = this.used;
    let at = start;
    const { segments, slots } = template;
    for (let k = 0; k < segments.length; k++) {
      const segment = segments[k]!;
      // TypedArray#set, not Buffer#copy: in Node 20 the latter builds views per call and was the hot spot.
      this.buf.set(segment, at);
      at += segment.length;
      const slot = slots[k];
      if (slot !== undefined) at += this.buf.write(values[slot], at, 'latin1');
    }
    this.used = at;
    return this.buf.subarray(start, at);
  }
}

/** Distinct bodies per call; events beyond this reuse one at random with fresh ids and times. */
const TEMPLATE_POOL = 256;

/**
 * Generates `count` LogEvents modelled on real System Log output (1.5-2 KB of compact JSON each). Bodies
 * are written as text, never via JSON.stringify of the whole event, so tricky spellings survive exactly.
 */
export function generateEvents(count: number, options: GenerateOptions = {}): EventRecord[] {
  const rnd = createRandom(options.seed);
  const stepMs = options.stepMs ?? 1;
  const group = Math.max(1, Math.floor(options.sameMillisecondGroups ?? 1));
  const outOfOrder =
    options.outOfOrder === true ? 0.05 : options.outOfOrder === false ? 0 : (options.outOfOrder ?? 0);
  const trickyEvery = options.trickyEvery ?? 50;
  const groups = Math.ceil(count / group);
  const start = options.publishedStart ?? Date.now() - 1000 - groups * stepMs;
  // Index-dependent bits in the uuid make ids unique within a call whatever the generator yields.
  const uuidMask = rnd.u32();
  const pool: Template[] = [];
  for (let k = 0; k < Math.min(count, TEMPLATE_POOL); k++) pool.push(makeTemplate(rnd, null));

  const slab = new Slab();
  const records: EventRecord[] = new Array<EventRecord>(count);
  let previousMs = Number.NaN;
  for (let i = 0; i < count; i++) {
    let publishedMs = start + Math.floor(i / group) * stepMs;
    if (outOfOrder > 0 && i > 0 && rnd.next() < outOfOrder) {
      publishedMs = previousMs - 1 - rnd.int(30_000);
    }
    previousMs = publishedMs;
    const published = new Date(publishedMs).toISOString();

    const a = (Math.imul(i, 0x9e3779b1) ^ uuidMask) >>> 0;
    const bh = hex8(rnd.u32());
    const ch = hex8((rnd.u32() & 0x3fffffff) | 0x80000000);
    const uuid = `${hex8(a)}-${bh.slice(0, 4)}-4${bh.slice(5, 8)}-${ch.slice(0, 4)}-${ch.slice(4)}${hex8(rnd.u32())}`;
    const transaction = transactionId(rnd);

    const tricky = trickyKindAt(i, trickyEvery);
    const template =
      tricky !== null ? makeTemplate(rnd, tricky) : i < pool.length ? pool[i]! : pool[rnd.int(pool.length)]!;
    const raw = slab.fill(template, { P: published, U: uuid, T: transaction });
    records[i] = { uuid, published, publishedMs, eventType: template.eventType, raw };
  }
  return records;
}
