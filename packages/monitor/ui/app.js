// pgha dashboard: formations, nodes and the event timeline of one monitor, live.
//
// Served by the monitor at /ui without credentials: this file carries no data. It asks for
// the operator token once (kept in sessionStorage, for this tab only) and sends it as
// `Authorization: Bearer` with every call to the API, the event stream included (read with
// fetch and a stream reader, since EventSource cannot send headers). No cookies, no
// framework, no build step; every value from the monitor goes into the page as text.
'use strict';

const TOKEN_KEY = 'pgha.operatorToken';
/** How often the node table is read again besides after each event, in ms. */
const REFRESH_MS = 2000;
/** Events the timeline starts with and keeps at most. */
const TIMELINE_START = 50;
const TIMELINE_MAX = 300;
/** Goal states in which a node takes writes (the monitor's WRITABLE_STATES). */
const WRITABLE = new Set(['single', 'wait_primary', 'primary', 'join_primary', 'apply_settings', 'stop_replication']);
const MAINTENANCE = new Set(['maintenance', 'wait_maintenance', 'prepare_maintenance']);

const $ = (id) => document.getElementById(id);

/** An element with properties (className, textContent, dataset…) and children. */
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
}

let session = null;
/** True with the viewer token (`GET /v1/session`): the dashboard shows and changes nothing. */
let readOnly = false;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

class Unauthenticated extends Error {}

/** One call to the monitor's API, JSON in and out. @throws Error with the monitor's message. */
async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  const data = await res.json().catch(() => null);
  if (res.status === 401) throw new Unauthenticated(data?.message ?? 'the monitor refused the token');
  if (!res.ok) throw new Error(data?.message ?? `the monitor answered HTTP ${res.status}`);
  return data;
}

/** An LSN `X/Y` as a BigInt. */
function lsnValue(lsn) {
  const [hi, lo] = String(lsn).split('/');
  return (BigInt(`0x${hi || '0'}`) << 32n) + BigInt(`0x${lo || '0'}`);
}

function formatBytes(n) {
  if (n < 1024n) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n) / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v.toFixed(1)} ${units[u]}`;
}

function roleOf(row) {
  if (row.goal_state === 'dropped') return 'dropped';
  if (row.connection === 'read-write') return 'primary';
  if (row.connection === 'read-only') return 'standby';
  return 'unreachable';
}

function showLogin(message) {
  $('dashboard').hidden = true;
  $('formation-picker').hidden = true;
  $('forget').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('stream-status').textContent = '';
  $('token').focus();
}

function stop() {
  if (!session) return;
  session.abort.abort();
  clearInterval(session.timer);
  session = null;
}

function forgetToken(message) {
  stop();
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

/** Runs `fn`, sending a refused token back to the login form and showing other errors in `statusId`. */
async function guarded(fn, statusId) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Unauthenticated) forgetToken(err.message);
    else if (statusId) $(statusId).textContent = err.message;
    return undefined;
  }
}

// ---------------------------------------------------------------- nodes

function renderNodes(rows) {
  const lagOf = new Map();
  for (const g of new Set(rows.map((r) => r.group_id))) {
    const members = rows.filter((r) => r.group_id === g && r.goal_state !== 'dropped');
    const writable = members.filter((r) => WRITABLE.has(r.goal_state));
    if (writable.length !== 1) continue;
    const primaryLsn = lsnValue(writable[0].lsn);
    for (const r of members) {
      if (r === writable[0]) continue;
      const lag = primaryLsn - lsnValue(r.lsn);
      lagOf.set(r.node_id, lag > 0n ? lag : 0n);
    }
  }
  const body = $('nodes').tBodies[0];
  body.replaceChildren(...rows.map((r) => {
    const role = roleOf(r);
    const lag = lagOf.get(r.node_id);
    const inMaintenance = MAINTENANCE.has(r.goal_state);
    // A viewer token changes nothing: no command buttons, only what maintenance is in.
    const button = readOnly
      ? document.createTextNode(inMaintenance ? 'on' : '')
      : el('button', { type: 'button', className: 'maintenance', textContent: inMaintenance ? 'Disable' : 'Enable' });
    if (!readOnly) button.addEventListener('click', () => maintenance(r, !inMaintenance, role === 'primary', button));
    return el('tr', { dataset: { node: r.name } },
      el('td', { className: 'name', textContent: r.name }),
      el('td', { className: 'num', textContent: `${r.group_id}/${r.node_id}` }),
      el('td', { className: `role role-${role === 'primary' || role === 'standby' ? role : 'none'}`, textContent: role }),
      el('td', { className: 'reported', textContent: r.reported_state }),
      el('td', { className: 'goal', textContent: r.goal_state }),
      el('td', { className: `health health-${r.health}`, textContent: r.health }),
      el('td', { className: 'num lsn', textContent: `${r.timeline}: ${r.lsn}` }),
      el('td', { className: 'num lag', textContent: lag === undefined ? '' : formatBytes(lag) }),
      el('td', {}, button));
  }));
  const notes = rows.filter((r) => r.note || r.problem).map((r) => el('li', { textContent: r.problem ? `Problem on ${r.name}: ${r.problem}` : r.note }));
  // Postgres parameters that wait for a restart of the node (as pgha show state says them).
  for (const r of rows) if ((r.pending_restart ?? []).length > 0) notes.push(el('li', { className: 'pending-restart', textContent: `Restart pending on ${r.name}: ${r.pending_restart.join(', ')} (pgha perform restart --pending)` }));
  $('notes').replaceChildren(...notes);
}

async function refreshNodes() {
  if (!session) return;
  const s = session;
  // A failed read says so where the stream's status is; the stream says "live" again once it is back.
  const rows = await guarded(() => api('GET', `/v1/formations/${encodeURIComponent(s.formation)}/state`), 'stream-status');
  if (rows && session === s) renderNodes(rows);
}

async function command(button, what, path, body) {
  const s = session;
  if (!s) return;
  button.disabled = true;
  $('command-status').textContent = `${what}…`;
  const answer = await guarded(() => api('POST', `/v1/formations/${encodeURIComponent(s.formation)}/${path}`, body), 'command-status');
  button.disabled = false;
  if (answer) $('command-status').textContent = `${what}: ${answer.note ?? answer.assignments.map((a) => a.reason).join('; ') ?? 'done'}`;
  void refreshNodes();
}

function maintenance(row, enable, isPrimary, button) {
  const body = { name: row.name, enable };
  if (enable && isPrimary) {
    if (!window.confirm(`${row.name} is the primary: switch over to a standby first, then put it in maintenance?`)) return;
    body.allowFailover = true;
  }
  void command(button, `maintenance ${enable ? 'on' : 'off'} for ${row.name}`, 'maintenance', body);
}

// ---------------------------------------------------------------- events

function time(iso) {
  const d = new Date(iso);
  return el('time', { dateTime: iso, title: iso, textContent: d.toLocaleTimeString([], { hour12: false }) });
}

function addEvent(e) {
  const item = el('li', { dataset: { eventId: String(e.event_id), rule: e.rule } },
    time(e.event_time),
    el('span', { className: 'node', textContent: e.node_name }),
    el('span', { className: 'transition', textContent: `${e.reported_state} → ${e.new_goal_state}` }),
    el('span', { className: 'reason', textContent: e.reason }));
  const list = $('timeline');
  list.prepend(item);
  while (list.children.length > TIMELINE_MAX) list.lastElementChild.remove();
}

/** One server-sent message (the lines between two blank lines). */
function parseMessage(block) {
  let id = null;
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
  }
  return { id, data: data.length > 0 ? data.join('\n') : null };
}

/**
 * Follows the formation's event stream until `s` stops, reconnecting after a second with
 * `Last-Event-ID` when it ends (the monitor restarted): no event is missed or shown twice.
 */
async function follow(s) {
  let lastEventId = null;
  while (!s.abort.signal.aborted) {
    try {
      const headers = { authorization: `Bearer ${token()}`, accept: 'text/event-stream' };
      if (lastEventId !== null) headers['last-event-id'] = lastEventId;
      const query = lastEventId === null ? `?count=${TIMELINE_START}` : '';
      const res = await fetch(`/v1/formations/${encodeURIComponent(s.formation)}/events/stream${query}`, { headers, signal: s.abort.signal, cache: 'no-store' });
      if (res.status === 401) {
        forgetToken('the monitor refused the token');
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      $('stream-status').textContent = 'live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer = (buffer + value).replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = parseMessage(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (message.id !== null) lastEventId = message.id;
          if (message.data === null) continue;
          addEvent(JSON.parse(message.data));
          void refreshNodes();
        }
      }
    } catch (err) {
      if (s.abort.signal.aborted) return;
    }
    $('stream-status').textContent = 'reconnecting…';
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---------------------------------------------------------------- start

function open(formation) {
  stop();
  session = { formation, abort: new AbortController(), timer: setInterval(() => void refreshNodes(), REFRESH_MS) };
  $('timeline').replaceChildren();
  $('nodes').tBodies[0].replaceChildren();
  $('command-status').textContent = '';
  void refreshNodes();
  void follow(session);
}

async function start() {
  const formations = await guarded(() => api('GET', '/v1/formations'), 'login-error');
  if (!formations) {
    if (token()) showLogin($('login-error').textContent);
    return;
  }
  const who = await guarded(() => api('GET', '/v1/session'), 'login-error');
  readOnly = who?.role === 'viewer';
  $('switchover').hidden = readOnly;
  $('read-only').hidden = !readOnly;
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('formation-picker').hidden = false;
  $('forget').hidden = false;
  const select = $('formation');
  select.replaceChildren(...formations.map((f) => el('option', { value: f.formation, textContent: f.formation })));
  const chosen = formations.find((f) => f.formation === 'default') ?? formations[0];
  if (chosen) {
    select.value = chosen.formation;
    open(chosen.formation);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    void start();
  });
  $('forget').addEventListener('click', () => forgetToken(''));
  $('formation').addEventListener('change', (ev) => open(ev.target.value));
  $('switchover').addEventListener('click', (ev) => void command(ev.currentTarget, 'switchover', 'switchover', {}));
  if (token()) void start();
  else showLogin('');
});
