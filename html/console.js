// The console page: one Guacamole client at a time over guacbridge's WebSocket tunnel, kept
// alive across network drops. The one-time token arrives in the URL fragment (never in a
// server log), is traded once for a reconnect secret kept in this tab's sessionStorage, and
// every tunnel after that uses the secret. A share link (#share=…) opens the same page as a
// viewer: its token is traded for a viewer secret, and the tunnel joins the owner's console.
import Guacamole from './vendor/guacamole-common.js';
import { STATE_TEXT, RECOVERABLE, describeError, hex, statusOfRefusal } from './status.js';
import { listenForNotices } from './notices.js';
import { COMBOS, attachKeyboard, attachPointer, attachTextInput, createOsk, fkeyCombo,
  sendCombo } from './input.js';
import { createMenu } from './menu.js';
import { createPower } from './power.js';
import { createClipboard } from './clipboard.js';
import { LAYOUT_NAMES, rdpLayout } from './layouts.js';
import { createCredentials } from './credentials.js';
import { createTypeText } from './typetext.js';
import { toast } from './toasts.js';

const MAX_ATTEMPTS = 5;          // automatic reconnects in a row before giving up
const RETRY_SECONDS = 5;
const STABLE_MS = 20000;         // connected this long: the attempt counter starts over
const POLL_MS = 30000;           // re-read the deadline (an operator may extend it)
const ZOOM_STEPS = [0.25, 0.33, 0.5, 0.67, 0.75, 0.9, 1, 1.1, 1.25, 1.5, 2, 3];
const { State } = Guacamole.Client;
const { CONNECTED } = State;

const $ = (id) => document.getElementById(id);
const base = location.pathname.replace(/\/+$/, '');
const consoleId = base.split('/').pop();
const storeKey = `guacbridge-session:${consoleId}`;
const shareKey = `guacbridge-share:${consoleId}`;
const SHARES_POLL_MS = 5000;     // the owner's list of shares, while the menu is open

const prefs = loadPrefs();
const session = {
  secret: null, info: null, offset: 0, conn: null, state: State.IDLE, error: null, attempts: 0,
  reconnects: 0, ended: null, zoom: 'fit', retryTimer: null,
  viewer: null,                  // 'view' or 'control' when this page came from a share link
};
const watchOnly = () => session.viewer === 'view';

// The live connection, whichever it is now.
const sink = {
  key(pressed, keysym) {
    if (session.state === CONNECTED && !watchOnly()) {
      session.conn.client.sendKeyEvent(pressed, keysym);
    }
    if (idle.timer) clearIdle();
  },
  mouse(state) {
    if (session.state === CONNECTED && !watchOnly()) {
      session.conn.client.sendMouseState(state, true);
    }
    if (idle.timer) clearIdle();
  },
};

// For people and for automated browser tests alike.
window.guacbridge = {
  get client() { return session.conn?.client ?? null; },
  get tunnel() { return session.conn?.tunnel ?? null; },
  get display() { return session.conn?.client.getDisplay() ?? null; },
  get state() { return session.state; },
  get error() { return session.error; },
  get reconnects() { return session.reconnects; },
  get deadline() { return session.info?.deadline ?? null; },
  get prefs() { return { ...prefs }; },
  get viewer() { return session.viewer; },
};

// -- preferences -------------------------------------------------------------------------

function loadPrefs() {
  const defaults = {
    input: 'none', mouse: 'absolute',
    layout: LAYOUT_NAMES.find((n) => n.startsWith((navigator.language || 'en').slice(0, 2)))
      || 'en-us',
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
  };
  try {
    const saved = JSON.parse(localStorage.getItem('guacbridge-prefs') || '{}');
    if (!LAYOUT_NAMES.includes(saved.layout)) delete saved.layout;
    return { ...defaults, ...saved };
  } catch {
    return defaults;
  }
}

function setPref(name, value) {
  if (prefs[name] === value) return;
  prefs[name] = value;
  localStorage.setItem('guacbridge-prefs', JSON.stringify(prefs));
  if (name === 'input' || name === 'layout') showInputPanel();
  // These travel in the handshake: a new one, with the same session, applies them.
  if (name === 'timezone' || (name === 'layout' && session.info?.protocol === 'rdp')) {
    reconnect('settings changed');
  }
}

// -- the page's own API (authorised by the reconnect secret) -----------------------------

async function pageApi(path, method = 'GET', body = undefined) {
  const headers = { 'Content-Type': 'application/json' };
  const secret = session.secret;
  if (secret) headers[session.viewer ? 'X-Share-Session' : 'X-Console-Session'] = secret;
  const response = await fetch(`${base}/${path}`, {
    method, headers, body: body && JSON.stringify(body), cache: 'no-store',
  });
  // The secret was rotated while this call was on its way (and the new one confirmed, which
  // ends the old one): the same call once more, with the secret the page holds now.
  if (response.status === 403 && secret && session.secret !== secret) {
    return pageApi(path, method, body);
  }
  const data = await response.json().catch(() => ({ details: response.statusText }));
  if (!response.ok) throw Object.assign(new Error(data.details), { status: response.status });
  return data;
}

/** Each resume rotates the reconnect secret: the tunnel hands the page the new one. */
function takeSecret(secret) {
  if (!secret || session.viewer || session.ended) return;
  session.secret = secret;
  sessionStorage.setItem(storeKey, secret);
  // Its first use tells the server that this page holds it, which ends the one before.
  pageApi('session').then(takeInfo).catch(() => {});
}

function takeInfo(info) {
  session.info = info;
  session.offset = info.now - Date.now() / 1000;
  menu.canExtend(info.deadline < info.max_deadline);
  power.enable(Boolean(info.power) && !session.viewer);
  tickClock();
}

async function startSession() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  const token = fragment.get('token');
  const shareToken = fragment.get('share');
  if (shareToken || (!token && sessionStorage.getItem(shareKey))) return startViewer(shareToken);
  if (token) {
    const info = await pageApi('session', 'POST', { token, extra: fragment.get('extra') });
    session.secret = info.session;
    sessionStorage.setItem(storeKey, info.session);
    takeInfo(info);
    return true;
  }
  session.secret = sessionStorage.getItem(storeKey);
  if (!session.secret) return false;
  takeInfo(await pageApi('session'));       // a reload: the same tab may come back
  return true;
}

async function startViewer(shareToken) {
  let info;
  if (shareToken) {
    info = await pageApi('join', 'POST', { token: shareToken });
    sessionStorage.setItem(shareKey, info.session);
    session.secret = info.session;
  } else {
    session.secret = sessionStorage.getItem(shareKey);
    session.viewer = 'view';               // until the server says which
    info = await pageApi('join');
  }
  session.viewer = info.mode;
  document.body.dataset.viewer = info.mode;
  menu.viewerMode(info.mode);
  takeInfo(info);
  return true;
}

// -- shares (the owner's) --------------------------------------------------------------------

async function refreshShares() {
  if (session.viewer || !session.secret) return;
  try {
    menu.showShares((await pageApi('shares')).shares);
  } catch { /* shown again on the next look */ }
}

async function share(mode) {
  try {
    const made = await pageApi('shares', 'POST', { mode });
    menu.showShareLink(made.url);
  } catch (e) {
    menu.showShareLink(null);
    banner('time', `Could not share: ${e.message}`);
  }
  refreshShares();
}

async function revokeShare(id) {
  try {
    await pageApi(`shares/${id}/revoke`, 'POST');
  } catch { /* already over */ }
  menu.showShareLink(null);
  refreshShares();
}

// -- status box and banners ---------------------------------------------------------------

function showStatus(text, detail = '', hint = '', isError = false, retry = false) {
  $('status-text').textContent = text;
  $('status-detail').textContent = detail;
  $('status-hint').textContent = hint;
  $('status-retry').hidden = !retry;
  $('status').classList.toggle('error', isError);
  $('status').hidden = false;
}

const banners = new Map();
function banner(kind, text) {
  if (text) banners.set(kind, text);
  else banners.delete(kind);
  const kinds = ['idle', 'time', 'unstable'].filter((k) => banners.has(k));
  $('banner').hidden = !kinds.length;
  $('banner-text').textContent = kinds.length ? banners.get(kinds[0]) : '';
  $('banner-extend').hidden = kinds[0] !== 'time' || Boolean(session.viewer);
}

// The server ends a console left without input; it warns first, and any key or mouse
// input here (which reaches the server) cancels that.
const idle = { timer: null, left: 0 };
function idleWarning(seconds) {
  clearInterval(idle.timer);
  idle.left = Math.max(0, Math.floor(seconds));
  const show = () => {
    banner('idle', `No input for a while: the console closes in ${idle.left} s unless you`
      + ' use the keyboard or mouse.');
    document.body.dataset.idle = String(idle.left);
    if (idle.left > 0) idle.left -= 1;
  };
  show();
  idle.timer = setInterval(show, 1000);
}

function clearIdle() {
  clearInterval(idle.timer);
  idle.timer = null;
  delete document.body.dataset.idle;
  banner('idle', null);
}

function fail(code, message, gaveUp = false) {
  // A bare number is only the close reason repeating the code.
  const own = message && !/^\d+$/.test(message) ? message : '';
  session.error = { code, message: own };
  document.body.dataset.error = String(code);
  const described = describeError(code, own);
  if (session.viewer && own) {     // "the owner stopped sharing", in the server's words
    Object.assign(described, { text: own, detail: `(code ${hex(code)})`,
      hint: "Ask the console's owner for a new link if you need one." });
  }
  const hint = gaveUp ? `Gave up after ${MAX_ATTEMPTS} attempts.` : described.hint;
  showStatus(described.text, described.detail, hint, true, gaveUp);
}

// -- connections --------------------------------------------------------------------------

function tunnelUrl() {
  const url = new URL(`${base}/../../tunnel`, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

function connectQuery() {
  const query = new URLSearchParams(session.viewer
    ? { console: consoleId, share: session.secret }
    : { console: consoleId, session: session.secret });
  query.set('width', String(window.innerWidth));
  query.set('height', String(window.innerHeight));
  query.set('dpi', String(Math.round(96 * (window.devicePixelRatio || 1))));
  query.set('timezone', prefs.timezone);
  query.set('layout', rdpLayout(prefs.layout));
  return query.toString();
}

function connect() {
  const tunnel = new Guacamole.WebSocketTunnel(tunnelUrl());
  const client = new Guacamole.Client(tunnel);
  const conn = { client, tunnel, status: null, over: false, deliberate: false };
  session.conn = conn;
  const display = client.getDisplay();
  $('display').replaceChildren(display.getElement());
  display.onresize = applyZoom;

  client.onstatechange = (state) => {
    if (session.conn !== conn) return;
    session.state = state;
    document.body.dataset.state = String(state);
    document.title = `Console – ${STATE_TEXT[state] || state}`;
    if (state === CONNECTED) onConnected(conn);
    else if (!conn.over && !session.error && state < CONNECTED) {
      showStatus(STATE_TEXT[state] || '');
    }
  };
  // Errors come as an `error` instruction and again as the close reason: keep the first.
  client.onerror = (status) => { conn.status ??= status; };
  tunnel.onerror = (status) => {
    // No reason from the server: the socket just died (a network drop, a proxy).
    if (!conn.status && !status.message) conn.dropped = true;
    conn.status ??= status;
  };
  tunnel.onstatechange = (state) => {
    if (session.conn !== conn) return;
    if (state === Guacamole.Tunnel.State.UNSTABLE) {
      banner('unstable', 'The network connection appears unstable…');
    } else if (state === Guacamole.Tunnel.State.OPEN) {
      banner('unstable', null);
    } else if (state === Guacamole.Tunnel.State.CLOSED) {
      connectionOver(conn);
    }
  };
  listenForNotices(tunnel, client, {
    // A restarting service asks its pages to move: a new tunnel with the same session, at
    // once, to whichever instance takes new connections. Not a failure: no attempt counted.
    restart() {
      if (session.conn === conn && !conn.over) reconnect('the console service is restarting');
    },
    // Only the newest tunnel's: its resume is the one the server counts.
    secret(secret) {
      if (session.conn === conn) takeSecret(secret);
    },
    idleWarning(seconds) {
      if (session.conn === conn) idleWarning(seconds);
    },
  });
  // Guacamole's own notices (guacd 1.5+, to the owner): who joins and leaves the console.
  client.onjoin = (id, name) => toast(`${name || 'Someone'} joined the console.`);
  client.onleave = (id, name) => toast(`${name || 'Someone'} left the console.`);
  // guacd lacks a credential the console was not given: the person is asked for it.
  client.onrequired = (names) => { if (session.conn === conn) credentials.ask(client, names); };
  clipboard.attach(client);
  client.connect(connectQuery());
}

function onConnected(conn) {
  $('status').hidden = true;
  if (conn.counted) return;
  conn.counted = true;
  if (session.attempts > 0 || conn.isReconnect) session.reconnects += 1;
  setTimeout(() => { if (session.conn === conn && !conn.over) session.attempts = 0; },
    STABLE_MS);
  applyZoom();
}

function connectionOver(conn) {
  if (conn.over) return;
  conn.over = true;
  credentials.hide();
  banner('unstable', null);
  clearIdle();
  if (conn.deliberate) return;
  // Closed without an `error` instruction the client itself never leaves its last state.
  session.state = State.DISCONNECTED;
  document.body.dataset.state = String(State.DISCONNECTED);
  document.title = `Console – ${STATE_TEXT[State.DISCONNECTED]}`;
  if (session.ended) {
    showStatus(session.ended, 'This console link no longer works.', '', false);
    return;
  }
  const status = conn.status;
  if (!status || status.code === Guacamole.Status.Code.SUCCESS) {
    showStatus('The console session ended.', '', 'Ask for a new console if you need one.');
    return;
  }
  if (RECOVERABLE.has(status.code) && session.attempts < MAX_ATTEMPTS) {
    scheduleRetry(status, conn.dropped);
  } else {
    fail(status.code, status.message, RECOVERABLE.has(status.code));
  }
}

function scheduleRetry(status, dropped) {
  session.attempts += 1;
  const { text, hint } = dropped
    ? { text: 'The connection to the console was lost.', hint: 'Check your network.' }
    : describeError(status.code, status.message);
  // The server's own words say why (e.g. "VM web-12 is not running"), retries or not: a
  // sentence of their own, before the countdown.
  const own = !dropped && status.message && !/^\d+$/.test(status.message)
    ? `${status.message.replace(/[^.!?]$/, '$&.')} ` : '';
  let left = RETRY_SECONDS;
  document.body.dataset.reconnecting = String(session.attempts);
  const tick = () => {
    if (left <= 0) return retryNow();
    showStatus(text, `${own}Reconnecting in ${left} s (attempt ${session.attempts} of`
      + ` ${MAX_ATTEMPTS})`, hint, true, true);
    left -= 1;
    session.retryTimer = setTimeout(tick, 1000);
  };
  tick();
}

function retryNow() {
  clearTimeout(session.retryTimer);
  session.error = null;
  delete document.body.dataset.error;
  delete document.body.dataset.reconnecting;
  showStatus('Reconnecting…');
  connect();
  session.conn.isReconnect = true;
}

/** A new handshake on purpose (time zone, layout); the console itself goes on. */
function reconnect(why) {
  const old = session.conn;
  if (!old || session.ended) return;
  old.deliberate = true;
  old.client.disconnect();
  showStatus(`Reconnecting (${why})…`);
  connect();
  session.conn.isReconnect = true;
}

// -- display ------------------------------------------------------------------------------

function applyZoom() {
  const display = session.conn?.client.getDisplay();
  if (!display || !display.getWidth()) return;
  const panelHeight = [$('text-input'), $('osk')].reduce(
    (sum, panel) => sum + (panel.hidden ? 0 : panel.offsetHeight), 0);
  let scale = session.zoom;
  if (scale === 'fit') {
    scale = Math.min(1, window.innerWidth / display.getWidth(),
      (window.innerHeight - panelHeight) / display.getHeight());
  }
  display.scale(scale);
  $('screen').classList.toggle('scroll', session.zoom !== 'fit');
  $('screen').style.bottom = `${panelHeight}px`;
  menu.showZoom(scale, session.zoom === 'fit');
}

function zoom(how) {
  const display = session.conn?.client.getDisplay();
  const current = display ? display.getScale() : 1;
  if (how === 'fit' || typeof how === 'number') session.zoom = how;
  else if (how === 'in') session.zoom = ZOOM_STEPS.find((s) => s > current + 0.001) || 3;
  else session.zoom = [...ZOOM_STEPS].reverse().find((s) => s < current - 0.001) || 0.25;
  applyZoom();
}

async function toggleFullscreen() {
  if (document.fullscreenElement) {
    navigator.keyboard?.unlock?.();
    await document.exitFullscreen().catch(() => {});
    return;
  }
  await document.documentElement.requestFullscreen().catch(() => {});
  // With the Keyboard Lock API, Alt-Tab, Super and Escape reach the server too.
  await navigator.keyboard?.lock?.().catch(() => {});
}

// -- input panels ---------------------------------------------------------------------------

let osk = null;
function showInputPanel() {
  $('text-input').hidden = prefs.input !== 'text';
  $('osk').hidden = prefs.input !== 'osk';
  if (prefs.input === 'osk' && (!osk || osk.layoutName !== prefs.layout)) {
    osk = createOsk($('osk'), sink, prefs.layout);
    osk.layoutName = prefs.layout;
  }
  if (prefs.input === 'text') $('text-field').focus();
  resizeOsk();
  applyZoom();
}

const OSK_MAX_WIDTH = 960;   // px: keys stay finger-sized, not poster-sized
function resizeOsk() {
  if (!osk || $('osk').hidden) return;
  const style = getComputedStyle($('osk'));
  const inner = $('osk').clientWidth - parseFloat(style.paddingLeft)
    - parseFloat(style.paddingRight);
  osk.resize(Math.min(inner, OSK_MAX_WIDTH));
}

// -- session clock --------------------------------------------------------------------------

function formatLeft(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function tickClock() {
  const info = session.info;
  if (!info || info.deadline == null) return;
  const left = info.deadline - (Date.now() / 1000 + session.offset);
  menu.showTimeLeft(formatLeft(left));
  const warn = left <= info.warn_before && !session.ended;
  banner('time', warn ? `The session ends in ${formatLeft(left)}.` : null);
  document.body.dataset.timeLeft = String(Math.max(0, Math.floor(left)));
}

async function extend() {
  try {
    takeInfo(await pageApi('extend', 'POST'));
  } catch (e) {
    banner('time', `Could not extend: ${e.message}`);
  }
}

async function closeSession() {
  session.ended = 'You closed the session.';
  try {
    await pageApi('close', 'POST');
  } catch { /* the server may have closed it already */ }
  sessionStorage.removeItem(storeKey);
  banner('time', null);
  session.conn?.client.disconnect();
  showStatus(session.ended, 'This console link no longer works.');
}

// -- start ----------------------------------------------------------------------------------

const clipboard = createClipboard($('clipboard'));
const power = createPower(pageApi);
const credentials = createCredentials({
  onShow: () => { $('status').hidden = true; },
  // No credentials, no console: this connection ends; the session itself stays (Reconnect
  // asks again).
  onCancel: () => {
    const conn = session.conn;
    if (conn) { conn.deliberate = true; conn.client.disconnect(); }
    session.state = State.DISCONNECTED;
    document.body.dataset.state = String(State.DISCONNECTED);
    document.body.dataset.error = 'cancelled';
    showStatus('The console was closed: you cancelled the sign-in.',
      'The server asked for credentials the console was not given.',
      'Reconnect to be asked again.', true, true);
  },
});
const menu = createMenu({
  extend, closeSession, toggleFullscreen, zoom, setPref,
  sendCombo: (name) => sendCombo(sink, COMBOS[name]),
  sendFkey: (n) => sendCombo(sink, fkeyCombo(n)),
  onOpen: () => { clipboard.pullLocal(); refreshShares(); },
  share, revokeShare,
}, prefs);

const ownsFocus = () => {
  const el = document.activeElement;
  return Boolean(el && el !== document.body && !$('screen').contains(el));
};
attachKeyboard(sink, { onMenuKey: () => menu.toggle(), ownsFocus });
attachPointer($('display'), sink, () => prefs.mouse);
attachTextInput($('text-input'), $('text-field'), sink);
createTypeText(sink, () => prefs.layout);
// A click on the console gives the keyboard back to it.
$('screen').addEventListener('mousedown', () => {
  if (ownsFocus()) document.activeElement.blur();
});
$('status-retry').addEventListener('click', () => {
  session.attempts = Math.max(0, session.attempts - 1);
  retryNow();
});
$('banner-extend').addEventListener('click', extend);
document.addEventListener('fullscreenchange',
  () => menu.showFullscreen(Boolean(document.fullscreenElement)));
let resizeTimer = null;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    resizeOsk();
    applyZoom();
    if (session.state === CONNECTED) {
      session.conn.client.sendSize(window.innerWidth, window.innerHeight);
    }
  }, 300);
}, { passive: true });
window.addEventListener('pagehide', () => {
  if (session.conn) session.conn.deliberate = true;
  session.conn?.client.disconnect();
});
setInterval(tickClock, 1000);
setInterval(() => {
  if (session.secret && !session.ended) {
    pageApi(session.viewer ? 'join' : 'session').then(takeInfo).catch(() => {});
  }
}, POLL_MS);
setInterval(() => { if (menu.isOpen()) refreshShares(); }, SHARES_POLL_MS);

async function start() {
  showInputPanel();
  try {
    if (!(await startSession())) {
      showStatus('This page needs a console link with a token.',
        'Open the full URL you were given; each link works once.', '', true);
      return;
    }
  } catch (e) {
    sessionStorage.removeItem(storeKey);
    sessionStorage.removeItem(shareKey);
    fail(statusOfRefusal(e.status), e.message);
    return;
  }
  // Opened for a server that is off: its Start comes first, the connection once it is on.
  if (session.info?.waiting) power.waitForStart(() => pageApi('session'), connect);
  else connect();
}

start();
