/*
 * Per-event cost of turning one System Log page into tagged NDJSON:
 *   (a) JSON.parse of the page + JSON.stringify of every event with the tag (what naive collectors do),
 *   (b) scanPage + renderNdjson (byte splicing).
 * Run: npx tsx bench/page-body.bench.ts [events-per-page]
 */
import { renderNdjson, scanPage } from '../src/sources/okta/page-body.js';

const TAGS = { _okta_event_type: 'systemLog' } as const;

/** A user.session.start-like event shaped after Okta's documented examples, ~1.7 KB compact. */
function makeEvent(i: number): Record<string, unknown> {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0').slice(-w);
  const ip = `${(i * 7) % 223}.${(i * 13) % 255}.${(i * 17) % 255}.${(i * 19) % 255}`;
  return {
    actor: {
      id: `00u1qw1mqitPHM8A${hex(i, 4)}`,
      type: 'User',
      alternateId: `user.${i}@example.com`,
      displayName: `Test User ${i}`,
      detailEntry: null,
    },
    client: {
      userAgent: {
        rawUserAgent:
          'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
        os: 'Mac OS X',
        browser: 'CHROME',
      },
      zone: 'null',
      device: 'Computer',
      id: null,
      ipAddress: ip,
      geographicalContext: {
        city: 'San Francisco',
        state: 'California',
        country: 'United States',
        postalCode: '94107',
        geolocation: { lat: 37.7697, lon: -122.3933 },
      },
    },
    device: null,
    authenticationContext: {
      authenticationProvider: null,
      credentialProvider: null,
      credentialType: null,
      issuer: null,
      interface: null,
      authenticationStep: 0,
      externalSessionId: `102${hex(i * 2654435761, 8)}DKQSvCI4RVXChzX`,
    },
    displayMessage: 'User login to Okta',
    eventType: 'user.session.start',
    outcome: {
      result: i % 10 === 0 ? 'FAILURE' : 'SUCCESS',
      reason: i % 10 === 0 ? 'INVALID_CREDENTIALS' : null,
    },
    published: new Date(Date.UTC(2025, 0, 15, 8, 30, 0, i * 37)).toISOString(),
    securityContext: {
      asNumber: 7922,
      asOrg: 'comcast',
      isp: 'comcast cable',
      domain: 'comcast.net',
      isProxy: false,
    },
    severity: 'INFO',
    debugContext: {
      debugData: {
        requestId: `Z${hex(i * 40503, 8)}qFOAAAB7u4AAAAs`,
        requestUri: '/idp/idx/authenticators/poll',
        threatSuspected: 'false',
      },
    },
    legacyEventType: 'core.user_auth.login_success',
    transaction: { type: 'WEB', id: `V04Oy4ubUOc5UuG6s9D${hex(i, 4)}AABtc`, detail: {} },
    uuid: `f790999f-fe87-467a-9880-${hex(i * 2654435761, 12)}`,
    version: '0',
    request: {
      ipChain: [
        {
          ip,
          geographicalContext: {
            city: 'San Francisco',
            state: 'California',
            country: 'United States',
            postalCode: '94107',
            geolocation: { lat: 37.7697, lon: -122.3933 },
          },
          version: 'V4',
          source: null,
        },
      ],
    },
    target: [
      {
        id: `00u1qw1mqitPHM8A${hex(i, 4)}`,
        type: 'User',
        alternateId: `user.${i}@example.com`,
        displayName: `Test User ${i}`,
        detailEntry: null,
      },
    ],
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

function timeIt(label: string, rounds: number, fn: () => unknown): number {
  for (let k = 0; k < Math.max(20, rounds / 5); k++) fn();
  const samples: number[] = [];
  let sink = 0;
  for (let k = 0; k < rounds; k++) {
    const t0 = process.hrtime.bigint();
    const r = fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e3);
    if (Buffer.isBuffer(r)) sink += r.length;
  }
  const us = median(samples);
  console.log(`${label.padEnd(52)} ${us.toFixed(0).padStart(7)} µs/page  ${(us / n).toFixed(2)} µs/event`);
  return sink >= 0 ? us : -1;
}

const n = Number(process.argv[2] ?? 1000);
const page = Buffer.from(JSON.stringify(Array.from({ length: n }, (_, i) => makeEvent(i))));
console.log(
  `page: ${n} events, ${page.length} bytes (${(page.length / n).toFixed(0)} B/event), node ${process.version}`,
);

const naive = timeIt('(a) JSON.parse + JSON.stringify each event (strings)', 60, () => {
  const events = JSON.parse(page.toString('utf8')) as Record<string, unknown>[];
  const lines: string[] = [];
  for (const e of events) lines.push(JSON.stringify({ ...e, ...TAGS }));
  return lines;
});
const naiveBuf = timeIt("(a') same, joined into one Buffer", 60, () => {
  const events = JSON.parse(page.toString('utf8')) as Record<string, unknown>[];
  let out = '';
  for (const e of events) out += JSON.stringify({ ...e, ...TAGS }) + '\n';
  return Buffer.from(out);
});
const scan = timeIt('scanPage only', 200, () => scanPage(page));
const spans = scanPage(page);
timeIt('renderNdjson only', 200, () => renderNdjson(page, spans, TAGS));
const ours = timeIt('(b) scanPage + renderNdjson', 200, () => renderNdjson(page, scanPage(page), TAGS));

const pretty = Buffer.from(JSON.stringify(JSON.parse(page.toString('utf8')), null, 2));
timeIt(`(b) on the same page pretty-printed (${pretty.length} B)`, 100, () =>
  renderNdjson(pretty, scanPage(pretty), TAGS),
);

// The two ways must produce the same events before their speed means anything.
const ndjson = renderNdjson(page, scanPage(page), TAGS).toString('utf8').split('\n');
const reference = (JSON.parse(page.toString('utf8')) as Record<string, unknown>[]).map((e) =>
  JSON.stringify({ ...e, ...TAGS }),
);
if (ndjson.length !== n + 1 || ndjson.slice(0, n).some((line, i) => line !== reference[i])) {
  throw new Error('scanPage + renderNdjson output differs from JSON.parse + JSON.stringify');
}

console.log(
  `ratio (b)/(a) = ${(ours / naive).toFixed(3)}, (b)/(a') = ${(ours / naiveBuf).toFixed(3)}; scan ${(
    ((scan / page.length) * 1e6) /
    1e3
  ).toFixed(2)} ns/byte`,
);
