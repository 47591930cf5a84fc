// The oktail console's pages, drawn from the JSON API. Plain DOM, no framework, no third-party code:
// everything the browser runs ships in the package and works offline. Text goes in through textContent
// only, so nothing from an event or a message can become markup.
'use strict';

const main = document.getElementById('main');
let refreshTimer = null;

/** Creates an element: h('p', { class: 'x' }, 'text', child). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (res.status === 401) {
    location.href = '/';
    throw new Error('not signed in');
  }
  const data = await res.json().catch(() => ({}));
  return { status: res.status, data };
}

function show(...children) {
  main.replaceChildren(...children);
}

function fmtNumber(n) {
  return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US');
}

function fmtLag(secs) {
  if (secs === null || secs === undefined) return '–';
  if (secs < 120) return `${secs} s`;
  if (secs < 7200) return `${Math.round(secs / 60)} min`;
  return `${Math.round(secs / 3600)} h`;
}

function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

function fmtHeadroom(rl) {
  if (!rl) return '–';
  return `${rl.remaining} of ${rl.limit}`;
}

function statusCell(s) {
  const cls = `status ${s.state.replace(' ', '-')}`;
  return h(
    'span',
    { class: cls },
    s.state,
    s.message ? h('span', { class: 'help' }, ` — ${s.message}`) : null,
  );
}

// ------------------------------------------------------------------------------------------------
// Sources tab

async function sourcesView() {
  document.title = 'Sources · oktail';
  const tbody = h('tbody', {});
  const table = h(
    'table',
    { 'aria-label': 'Sources' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Name'),
        h('th', { scope: 'col' }, 'Domain'),
        h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col', class: 'num' }, 'Events collected'),
        h('th', { scope: 'col', class: 'num' }, 'Events/s'),
        h('th', { scope: 'col', class: 'num' }, 'Lag'),
        h('th', { scope: 'col', class: 'num' }, 'Rate-limit headroom'),
        h('th', { scope: 'col' }, 'Last success'),
      ),
    ),
    tbody,
  );
  const empty = h('p', { class: 'empty' }, 'No sources yet. Add one to start collecting.');
  show(
    h(
      'div',
      { class: 'toolbar' },
      h('h1', {}, 'Sources'),
      h('a', { class: 'button', href: '/sources/new' }, 'Add Source'),
    ),
    table,
    empty,
  );
  const refresh = async () => {
    const { data } = await api('GET', '/api/sources');
    const rows = (data.sources || []).map((s) =>
      h(
        'tr',
        { 'data-source': s.name },
        h('td', {}, h('a', { href: `/sources/${encodeURIComponent(s.name)}` }, s.name)),
        h('td', {}, s.domain),
        h('td', {}, statusCell(s)),
        h('td', { class: 'num', 'data-col': 'events' }, fmtNumber(s.events)),
        h('td', { class: 'num' }, String(s.eventsPerSecond)),
        h('td', { class: 'num' }, fmtLag(s.lagSecs)),
        h('td', { class: 'num' }, fmtHeadroom(s.rateLimit)),
        h('td', {}, fmtTime(s.lastSuccess)),
      ),
    );
    tbody.replaceChildren(...rows);
    empty.hidden = rows.length > 0;
  };
  await refresh();
  refreshTimer = setInterval(() => refresh().catch(() => {}), 2000);
}

// ------------------------------------------------------------------------------------------------
// Add / edit a source

function newSourceView() {
  document.title = 'Add Source · oktail';
  show(
    h('h1', {}, 'Add Source'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'create-new' },
      h('h2', { id: 'create-new' }, 'Create New'),
      h(
        'button',
        { type: 'button', class: 'choice', onclick: () => sourceForm(null) },
        h('strong', {}, 'Okta Logs Collector'),
        h('span', { class: 'help' }, "Collects an Okta org's System Log through its API."),
      ),
    ),
  );
}

/** A labelled field; `control` is the input. Returns the wrapper, with an error slot below the input. */
function field(id, label, control, help) {
  control.id = id;
  const error = h('p', { class: 'error', id: `${id}-error`, hidden: true });
  const helpEl = help ? h('p', { class: 'help', id: `${id}-help` }, help) : null;
  control.setAttribute(
    'aria-describedby',
    [helpEl ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(' '),
  );
  return h(
    'div',
    { class: 'field', 'data-field': id },
    h('label', { for: id }, label),
    control,
    helpEl,
    error,
  );
}

function checkbox(id, label, checked, help) {
  const input = h('input', { type: 'checkbox', id });
  input.checked = checked;
  const error = h('p', { class: 'error', id: `${id}-error`, hidden: true });
  input.setAttribute('aria-describedby', `${id}-error`);
  return h(
    'div',
    { class: 'field inline', 'data-field': id },
    input,
    ' ',
    h('label', { for: id }, label),
    help ? h('p', { class: 'help' }, help) : null,
    error,
  );
}

function visibleSpaces(text) {
  return text.replace(/ /g, '·');
}

/** A write-only secret: "set" with Replace when one exists, else a password field. */
function secretField(id, label, isSet, help) {
  const input = h('input', { type: 'password', autocomplete: 'new-password' });
  const wrapper = field(id, label, input, help);
  if (isSet) {
    input.hidden = true;
    const replace = h('button', { type: 'button', class: 'secondary' }, 'Replace');
    const state = h('div', { class: 'secret-set' }, h('span', {}, 'set'), replace);
    replace.addEventListener('click', () => {
      state.remove();
      input.hidden = false;
      input.focus();
    });
    input.before(state);
  }
  return wrapper;
}

function scriptEditor(id, text) {
  const area = h('textarea', { spellcheck: 'false', autocomplete: 'off', wrap: 'off' });
  area.value = text;
  const gutter = h('pre', { class: 'gutter', 'aria-hidden': 'true' });
  const sync = () => {
    const lines = area.value.split('\n').length;
    gutter.textContent = Array.from({ length: lines }, (_, i) => String(i + 1)).join('\n');
    area.rows = lines;
  };
  area.addEventListener('input', sync);
  sync();
  const wrapper = field(
    id,
    'Okta Collection Script',
    area,
    'Lua 5.4. Prefilled with the built-in script; leave it as it is unless you need to change how the System Log is read.',
  );
  const editor = h('div', { class: 'editor' }, gutter);
  area.replaceWith(editor);
  editor.append(area);
  return wrapper;
}

async function sourceForm(name) {
  const editing = name !== null;
  const { data: meta } = await api('GET', '/api/form');
  let values = null;
  if (editing) {
    const { status, data } = await api('GET', `/api/sources/${encodeURIComponent(name)}`);
    if (status !== 200 || !data.form) {
      show(h('p', { class: 'notice bad' }, data.error || 'This source is not in the config.'));
      return;
    }
    values = data.form;
  }
  document.title = `${editing ? `Edit ${name}` : 'Okta Logs Collector'} · oktail`;
  const v = values || {
    name: '',
    domain: '',
    interval_secs: '120',
    start_from: '',
    strategy: 'bearer',
    token_set: false,
    header: 'Authorization',
    prefix: 'SSWS ',
    client_id: '',
    private_key_file: '',
    private_key_pass_set: false,
    key_id: '',
    scopes: 'okta.logs.read',
    dpop: 'auto',
    tls_enabled: false,
    ca_file: '',
    crt_file: '',
    key_file: '',
    key_pass_set: false,
    verify_certificate: true,
    verify_hostname: true,
    script: meta.script,
    sinks: meta.sinks.length === 1 ? [meta.sinks[0].name] : [],
  };

  const nameInput = h('input', { type: 'text', autocomplete: 'off', required: true });
  nameInput.value = v.name;
  if (editing) nameInput.readOnly = true;
  const domain = h('input', { type: 'text', autocomplete: 'off', placeholder: 'company.okta.com' });
  domain.value = v.domain;
  const interval = h('input', { type: 'number', min: '10', max: '86401', step: '1' });
  interval.value = v.interval_secs;
  const startFrom = h('input', { type: 'text', autocomplete: 'off', placeholder: '2025-01-15T08:30:00Z' });
  startFrom.value = v.start_from;
  const strategy = h(
    'select',
    {},
    h('option', { value: 'bearer' }, 'Bearer Authentication'),
    h('option', { value: 'oauth2' }, 'OAuth 2.0'),
  );
  strategy.value = v.strategy;
  const header = h('input', { type: 'text', autocomplete: 'off' });
  header.value = v.header;
  const prefix = h('input', { type: 'text', autocomplete: 'off' });
  prefix.value = v.prefix;
  const prefixShown = h('span', { class: 'visible-space' }, visibleSpaces(v.prefix));
  prefix.addEventListener('input', () => (prefixShown.textContent = visibleSpaces(prefix.value)));
  const clientId = h('input', { type: 'text', autocomplete: 'off', placeholder: '0oa1b2c3d4e5f6g7h8i9' });
  clientId.value = v.client_id;
  const privateKeyFile = h('input', { type: 'text', autocomplete: 'off' });
  privateKeyFile.value = v.private_key_file;
  const keyId = h('input', { type: 'text', autocomplete: 'off' });
  keyId.value = v.key_id;
  const scopes = h('input', { type: 'text', autocomplete: 'off' });
  scopes.value = v.scopes;
  const dpop = h(
    'select',
    {},
    h('option', { value: 'auto' }, 'auto'),
    h('option', { value: 'true' }, 'true'),
    h('option', { value: 'false' }, 'false'),
  );
  dpop.value = v.dpop;

  const tokenField = secretField(
    'token',
    'Auth Token',
    v.token_set,
    'The API token. Never shown again once saved.',
  );
  const bearerFields = h(
    'div',
    { id: 'bearer-fields' },
    tokenField,
    field('header', 'Bearer Header', header, 'Default Authorization.'),
    (() => {
      const f = field('prefix', 'Bearer Token Prefix', prefix);
      f.querySelector('.error').before(
        h(
          'p',
          { class: 'help' },
          'Default "SSWS " with a trailing space; as typed (· marks a space): ',
          prefixShown,
        ),
      );
      return f;
    })(),
  );
  const privateKeyPassField = secretField(
    'private_key_pass',
    'Private Key Password',
    v.private_key_pass_set,
    'Only for an encrypted PEM key. Never shown again once saved.',
  );
  const oauthFields = h(
    'div',
    { id: 'oauth-fields' },
    field(
      'client_id',
      'Client ID',
      clientId,
      "The service app's client ID (Admin Console > Applications > the app > General).",
    ),
    field(
      'private_key_file',
      'Private Key File',
      privateKeyFile,
      "The app's private key on the collector's machine (PEM, RSA or EC, or a JWK JSON file), e.g. /etc/oktail/okta-app.pem.",
    ),
    privateKeyPassField,
    field(
      'key_id',
      'Key ID',
      keyId,
      "The key's kid as registered with the app; leave empty if the app has one key.",
    ),
    field('scopes', 'Scopes', scopes, 'Space- or comma-separated; default okta.logs.read.'),
    field('dpop', 'DPoP', dpop, 'auto: when the org asks for it (default); true: always; false: never.'),
  );
  // Only the chosen strategy's fields are in the form: the other set is detached, not just hidden, so a
  // label such as "Private Key File" (also a TLS field) names one visible field at a time.
  const authFields = h('div', { id: 'auth-fields' });
  const syncStrategy = () =>
    authFields.replaceChildren(strategy.value === 'oauth2' ? oauthFields : bearerFields);
  strategy.addEventListener('change', syncStrategy);
  syncStrategy();

  const tlsFields = h(
    'div',
    { id: 'tls-fields' },
    field(
      'ca_file',
      'CA Certificate File',
      h('input', { type: 'text', value: v.ca_file }),
      "PEM file on the collector's machine, e.g. /etc/oktail/ca.pem.",
    ),
    field(
      'crt_file',
      'Certificate File',
      h('input', { type: 'text', value: v.crt_file }),
      'Client certificate (PEM) for mutual TLS.',
    ),
    field(
      'key_file',
      'Private Key File',
      h('input', { type: 'text', value: v.key_file }),
      'Private key (PEM) of the client certificate.',
    ),
    secretField(
      'key_pass',
      'Private Key Password',
      v.key_pass_set,
      'Only for an encrypted private key. Never shown again once saved.',
    ),
    checkbox('verify_certificate', 'Verify Certificate', v.verify_certificate),
    checkbox('verify_hostname', 'Verify Hostname', v.verify_hostname),
  );
  const tlsToggle = checkbox(
    'tls_enabled',
    'Use custom TLS',
    v.tls_enabled,
    "Off: standard HTTPS with the system's trusted CAs.",
  );
  const tlsInput = tlsToggle.querySelector('input');
  tlsInput.setAttribute('role', 'switch');
  const syncTls = () => (tlsFields.hidden = !tlsInput.checked);
  tlsInput.addEventListener('change', syncTls);
  syncTls();

  const sinkBoxes = meta.sinks.map((s) =>
    checkbox(`sink-${s.name}`, `${s.name} (${s.type})`, v.sinks.includes(s.name)),
  );
  const sinksError = h('p', { class: 'error', id: 'sinks-error', hidden: true });

  const result = h('div', { id: 'result', role: 'status', 'aria-live': 'polite' });
  const formError = h('div', { id: 'form-error', role: 'alert' });
  const testButton = h('button', { type: 'button', class: 'secondary' }, 'Test Connection');
  const saveButton = h('button', { type: 'submit' }, 'Save');

  const form = h(
    'form',
    { novalidate: true, 'aria-label': editing ? `Edit source ${name}` : 'Okta Logs Collector' },
    h(
      'fieldset',
      {},
      h('legend', {}, 'General Settings'),
      field(
        'name',
        'Source Name',
        nameInput,
        editing ? 'A source keeps its name.' : '1 to 64 letters, digits, _ or -.',
      ),
      field(
        'domain',
        'Okta Domain',
        domain,
        'e.g. company.okta.com, dev-123456.okta.com, company.oktapreview.com, company.okta-gov.com; no https://',
      ),
      field('interval_secs', 'Collection Interval (seconds)', interval, '10 to 86401; default 120.'),
      field(
        'start_from',
        'Start From',
        startFrom,
        'ISO 8601, e.g. 2025-01-15T08:30:00Z; leave empty to start from the current time.',
      ),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Authentication'),
      field(
        'strategy',
        'Authentication Strategy',
        strategy,
        'Bearer Authentication: an API token. OAuth 2.0: a service app with a private key (client credentials).',
      ),
      authFields,
    ),
    h('fieldset', {}, h('legend', {}, 'TLS Configuration'), tlsToggle, tlsFields),
    h('fieldset', {}, h('legend', {}, 'Advanced Settings'), scriptEditor('script', v.script)),
    h(
      'fieldset',
      { 'aria-describedby': 'sinks-error', 'data-field': 'sinks' },
      h('legend', {}, 'Deliver To'),
      sinkBoxes.length > 0 ? sinkBoxes : h('p', { class: 'empty' }, 'No sinks in the config.'),
      sinksError,
    ),
    formError,
    h(
      'div',
      { class: 'actions' },
      testButton,
      saveButton,
      h(
        'a',
        { class: 'button secondary', href: editing ? `/sources/${encodeURIComponent(name)}` : '/sources' },
        'Cancel',
      ),
    ),
    result,
  );

  const collect = () => ({
    mode: editing ? 'edit' : 'create',
    name: nameInput.value.trim(),
    domain: domain.value.trim(),
    interval_secs: interval.value,
    start_from: startFrom.value,
    strategy: strategy.value,
    token: tokenField.querySelector('input').value,
    header: header.value,
    prefix: prefix.value,
    client_id: clientId.value,
    private_key_file: privateKeyFile.value,
    private_key_pass: privateKeyPassField.querySelector('input').value,
    key_id: keyId.value,
    scopes: scopes.value,
    dpop: dpop.value,
    tls_enabled: tlsInput.checked,
    ca_file: form.querySelector('#ca_file').value,
    crt_file: form.querySelector('#crt_file').value,
    key_file: form.querySelector('#key_file').value,
    key_pass: form.querySelector('#key_pass').value,
    verify_certificate: form.querySelector('#verify_certificate').checked,
    verify_hostname: form.querySelector('#verify_hostname').checked,
    script: form.querySelector('#script').value,
    sinks: meta.sinks
      .filter((s) => form.querySelector(`#sink-${CSS.escape(s.name)}`).checked)
      .map((s) => s.name),
  });

  const clearErrors = () => {
    for (const el of form.querySelectorAll('.error')) {
      el.hidden = true;
      el.textContent = '';
    }
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    formError.replaceChildren();
  };
  const showProblems = (problems) => {
    const general = [];
    for (const p of problems) {
      const slot = p.field ? form.querySelector(`#${p.field}-error`) : null;
      if (!slot) {
        general.push(p.message);
        continue;
      }
      slot.hidden = false;
      slot.textContent = slot.textContent ? `${slot.textContent}\n${p.message}` : p.message;
      const input = form.querySelector(`#${p.field}`);
      if (input) input.setAttribute('aria-invalid', 'true');
    }
    if (general.length > 0) {
      formError.replaceChildren(
        h(
          'div',
          { class: 'notice bad' },
          h(
            'ul',
            {},
            general.map((m) => h('li', {}, m)),
          ),
        ),
      );
    }
    const first = form.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
  };

  testButton.addEventListener('click', async () => {
    clearErrors();
    testButton.disabled = true;
    result.replaceChildren(h('p', {}, 'Testing the connection…'));
    try {
      const { data } = await api('POST', '/api/test', collect());
      if (data.problems && data.problems.length > 0) {
        result.replaceChildren(h('p', { class: 'notice bad' }, 'Fix the marked fields first.'));
        showProblems(data.problems);
        return;
      }
      result.replaceChildren(
        h(
          'div',
          { class: `card ${data.ok ? '' : 'failed'}`, 'aria-label': 'Connection test' },
          h('h2', {}, data.ok ? 'Connection test passed' : 'Connection test failed'),
          h(
            'ul',
            { class: 'layers' },
            data.layers.map((l) =>
              h(
                'li',
                { 'data-ok': String(l.ok) },
                h(
                  'span',
                  {
                    class: `mark ${l.ok ? 'pass' : 'fail'}`,
                    'aria-label': l.ok ? 'pass' : 'fail',
                    role: 'img',
                  },
                  l.ok ? '✓' : '✗',
                ),
                h('strong', {}, `${l.layer}: `),
                l.text,
              ),
            ),
          ),
          data.hint ? h('p', {}, h('strong', {}, 'What to do: '), data.hint) : null,
        ),
      );
    } finally {
      testButton.disabled = false;
    }
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors();
    saveButton.disabled = true;
    result.replaceChildren(h('p', {}, 'Saving…'));
    try {
      const body = collect();
      const { status, data } = editing
        ? await api('PUT', `/api/sources/${encodeURIComponent(name)}`, body)
        : await api('POST', '/api/sources', body);
      if (status === 200 && data.ok) {
        location.href = `/sources/${encodeURIComponent(body.name)}`;
        return;
      }
      result.replaceChildren(h('p', { class: 'notice bad' }, 'Not saved: fix the marked fields.'));
      showProblems(data.problems || [{ field: null, message: data.error || `failed (${status})` }]);
    } finally {
      saveButton.disabled = false;
    }
  });

  show(
    h(
      'p',
      {},
      h('a', { href: '/sources' }, 'Sources'),
      ' › ',
      editing ? `Edit ${name}` : 'Add Source › Okta Logs Collector',
    ),
    h('h1', {}, editing ? `Edit source ${name}` : 'Okta Logs Collector'),
    form,
  );
  (editing ? domain : nameInput).focus();
}

// ------------------------------------------------------------------------------------------------
// Source page

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

/** Events per minute over the last hour, as bars. */
function chart(perMinute) {
  const width = 600;
  const height = 160;
  const pad = { left: 44, right: 8, top: 10, bottom: 22 };
  const max = Math.max(1, ...perMinute);
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const barW = plotW / perMinute.length;
  const total = perMinute.reduce((a, b) => a + b, 0);
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `Events per minute over the last hour: ${total} in total, at most ${Math.max(...perMinute)} in a minute`,
  });
  root.append(
    svg('line', {
      x1: pad.left,
      y1: pad.top + plotH,
      x2: width - pad.right,
      y2: pad.top + plotH,
      stroke: '#aab1bd',
    }),
  );
  for (const frac of [0, 0.5, 1]) {
    const y = pad.top + plotH - frac * plotH;
    const label = svg('text', {
      x: pad.left - 6,
      y: y + 4,
      'text-anchor': 'end',
      'font-size': 10,
      fill: '#5b6475',
    });
    label.textContent = String(Math.round(max * frac));
    root.append(label, svg('line', { x1: pad.left, y1: y, x2: width - pad.right, y2: y, stroke: '#eef0f3' }));
  }
  perMinute.forEach((n, i) => {
    if (n === 0) return;
    const barH = (n / max) * plotH;
    const rect = svg('rect', {
      x: pad.left + i * barW + 1,
      y: pad.top + plotH - barH,
      width: Math.max(1, barW - 2),
      height: barH,
      fill: '#1f5fbf',
    });
    const title = svg('title', {});
    title.textContent = `${60 - i - 1} min ago: ${n} events`;
    rect.append(title);
    root.append(rect);
  });
  for (const [i, text] of [
    [0, '60 min ago'],
    [30, '30 min ago'],
    [59, 'now'],
  ]) {
    const t = svg('text', {
      x: pad.left + i * barW + barW / 2,
      y: height - 6,
      'text-anchor': 'middle',
      'font-size': 10,
      fill: '#5b6475',
    });
    t.textContent = text;
    root.append(t);
  }
  return root;
}

async function sourceView(name) {
  document.title = `${name} · oktail`;
  const facts = h('dl', { class: 'facts' });
  const chartBox = h('div', { class: 'chart card' });
  const errors = h('div', {});
  const eventsBody = h('tbody', {});
  const eventJson = h('div', { id: 'event-json' });
  const checkpoint = h('pre', { class: 'json', 'aria-label': 'Checkpoint JSON' });
  const notice = h('div', { role: 'status' });
  const dialog = deleteDialog(name, notice);
  let enabled = true;
  const toggle = h('button', { type: 'button', class: 'secondary' }, 'Disable');
  toggle.addEventListener('click', async () => {
    toggle.disabled = true;
    const { status, data } = await api(
      'POST',
      `/api/sources/${encodeURIComponent(name)}/${enabled ? 'disable' : 'enable'}`,
    );
    toggle.disabled = false;
    notice.replaceChildren(
      status === 200 && data.started !== false
        ? h(
            'p',
            { class: 'notice' },
            enabled
              ? 'Disabled: the source stopped; its checkpoint is kept.'
              : 'Enabled: the source collects again from its checkpoint.',
          )
        : h('p', { class: 'notice bad' }, data.error || `Failed (${status}).`),
    );
    await refresh();
  });

  show(
    h('p', {}, h('a', { href: '/sources' }, 'Sources'), ' › ', name),
    h(
      'div',
      { class: 'toolbar' },
      h('h1', {}, `Source ${name}`),
      h('a', { class: 'button secondary', href: `/sources/${encodeURIComponent(name)}/edit` }, 'Edit'),
      toggle,
      h('button', { type: 'button', class: 'danger', onclick: () => dialog.showModal() }, 'Delete'),
    ),
    notice,
    dialog,
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'h-status' },
      h('h2', { id: 'h-status' }, 'Status'),
      facts,
    ),
    h(
      'section',
      { 'aria-labelledby': 'h-chart' },
      h('h2', { id: 'h-chart' }, 'Events per minute (last hour)'),
      chartBox,
    ),
    h('section', { 'aria-labelledby': 'h-errors' }, h('h2', { id: 'h-errors' }, 'Recent errors'), errors),
    h(
      'section',
      { 'aria-labelledby': 'h-events' },
      h('h2', { id: 'h-events' }, 'Last 50 events'),
      h(
        'table',
        { 'aria-label': 'Recent events' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['published', 'eventType', 'actor', 'outcome', 'displayMessage'].map((c) =>
              h('th', { scope: 'col' }, c),
            ),
          ),
        ),
        eventsBody,
      ),
      eventJson,
    ),
    h(
      'section',
      { 'aria-labelledby': 'h-checkpoint' },
      h('h2', { id: 'h-checkpoint' }, 'Committed checkpoint'),
      checkpoint,
    ),
  );

  const refresh = async () => {
    const { status, data } = await api('GET', `/api/sources/${encodeURIComponent(name)}`);
    if (status !== 200) {
      facts.replaceChildren(h('p', {}, data.error || 'Unknown source.'));
      return;
    }
    const s = data.status;
    enabled = data.enabled;
    toggle.textContent = enabled ? 'Disable' : 'Enable';
    const row = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
    facts.replaceChildren(
      ...row('Domain', s.domain),
      ...row('Status', statusCell(s)),
      ...row('Events collected', h('span', { 'data-col': 'events' }, fmtNumber(s.events))),
      ...row('Events/s', String(s.eventsPerSecond)),
      ...row('Lag', fmtLag(s.lagSecs)),
      ...row('Rate-limit headroom', fmtHeadroom(s.rateLimit)),
      ...row('Last success', fmtTime(s.lastSuccess)),
    );
    chartBox.replaceChildren(chart(s.perMinute));
    errors.replaceChildren(
      s.errors.length === 0
        ? h('p', { class: 'empty' }, 'No errors.')
        : h(
            'ul',
            {},
            s.errors.map((e) => h('li', {}, h('time', { datetime: e.at }, fmtTime(e.at)), ' ', e.message)),
          ),
    );
    const rows = data.events.map((ev, i) => {
      const tr = h(
        'tr',
        { class: 'event', tabindex: '0', 'aria-label': `Show the JSON of event ${i + 1}` },
        h('td', {}, ev.published || ''),
        h('td', {}, ev.eventType || ''),
        h('td', {}, ev.actor || ''),
        h('td', {}, ev.outcome || ''),
        h('td', {}, ev.displayMessage || ''),
      );
      const open = () => {
        let pretty = ev.json;
        try {
          pretty = JSON.stringify(JSON.parse(ev.json), null, 2);
        } catch {
          // shown as delivered
        }
        eventJson.replaceChildren(
          h('h3', {}, 'Event JSON'),
          h('pre', { class: 'json', 'aria-label': 'Event JSON' }, pretty),
        );
      };
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          open();
        }
      });
      return tr;
    });
    eventsBody.replaceChildren(...rows);
    if (rows.length === 0)
      eventsBody.append(h('tr', {}, h('td', { colspan: '5', class: 'empty' }, 'No events collected yet.')));
    checkpoint.textContent = data.checkpoint
      ? JSON.stringify(data.checkpoint, null, 2)
      : 'No checkpoint committed yet.';
  };
  await refresh();
  refreshTimer = setInterval(() => refresh().catch(() => {}), 3000);
}

function deleteDialog(name, notice) {
  const keep = h('input', { type: 'radio', name: 'checkpoint', id: 'keep-checkpoint', value: 'keep' });
  keep.checked = true;
  const forget = h('input', { type: 'radio', name: 'checkpoint', id: 'forget-checkpoint', value: 'forget' });
  const confirm = h('button', { type: 'button', class: 'danger' }, 'Delete source');
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const dialog = h(
    'dialog',
    { 'aria-labelledby': 'delete-title' },
    h('h2', { id: 'delete-title' }, `Delete source ${name}?`),
    h(
      'p',
      {},
      'It stops collecting now (the page in delivery is finished first) and is removed from the config.',
    ),
    h(
      'div',
      { class: 'field inline' },
      keep,
      ' ',
      h(
        'label',
        { for: 'keep-checkpoint' },
        'Keep the checkpoint (adding the source again resumes where it stopped)',
      ),
    ),
    h(
      'div',
      { class: 'field inline' },
      forget,
      ' ',
      h('label', { for: 'forget-checkpoint' }, 'Forget the checkpoint'),
    ),
    h('div', { class: 'actions' }, confirm, cancel),
  );
  cancel.addEventListener('click', () => dialog.close());
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    const { status, data } = await api(
      'DELETE',
      `/api/sources/${encodeURIComponent(name)}?forget=${forget.checked}`,
    );
    dialog.close();
    if (status === 200) {
      location.href = '/sources';
      return;
    }
    confirm.disabled = false;
    notice.replaceChildren(h('p', { class: 'notice bad' }, data.error || `Delete failed (${status}).`));
  });
  return dialog;
}

// ------------------------------------------------------------------------------------------------

async function route() {
  clearInterval(refreshTimer);
  const path = location.pathname;
  let m;
  if (path === '/sources') await sourcesView();
  else if (path === '/sources/new') newSourceView();
  else if ((m = /^\/sources\/([^/]+)\/edit$/.exec(path))) await sourceForm(decodeURIComponent(m[1]));
  else if ((m = /^\/sources\/([^/]+)$/.exec(path))) await sourceView(decodeURIComponent(m[1]));
  else show(h('p', {}, 'Not found. ', h('a', { href: '/sources' }, 'Sources')));
}

route().catch((err) => show(h('p', { class: 'notice bad' }, `The console failed to load: ${err.message}`)));
