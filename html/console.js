// The console page: one Guacamole client over guacbridge's WebSocket tunnel.
// The one-time token arrives in the URL fragment (never sent to a server log) and is dropped
// from the address bar at once. The Ctrl-Alt-Shift menu will hang off `session` later.
import Guacamole from './vendor/guacamole-common.js';
import { STATE_TEXT, describeError } from './status.js';

const RESIZE_DEBOUNCE_MS = 300;

const $ = (id) => document.getElementById(id);
const session = { client: null, display: null, state: 0, error: null };

// For people and for automated browser tests alike.
window.guacbridge = {
  get client() { return session.client; },
  get display() { return session.display; },
  get state() { return session.state; },
  get error() { return session.error; },
};

function readLink() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  return { token: fragment.get('token'), extra: fragment.get('extra') };
}

function tunnelUrl() {
  const url = new URL('../tunnel', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

function connectQuery(link) {
  const query = new URLSearchParams({ token: link.token });
  if (link.extra) query.set('extra', link.extra);
  query.set('width', String(window.innerWidth));
  query.set('height', String(window.innerHeight));
  query.set('dpi', String(Math.round(96 * (window.devicePixelRatio || 1))));
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) query.set('timezone', zone);
  return query.toString();
}

// -- status box --------------------------------------------------------------------------

function showStatus(text, detail = '', isError = false) {
  const box = $('status');
  $('status-text').textContent = text;
  $('status-detail').textContent = detail;
  box.classList.toggle('error', isError);
  box.hidden = false;
}

function hideStatus() { $('status').hidden = true; }

function onState(state) {
  session.state = state;
  document.body.dataset.state = String(state);
  document.title = `Console – ${STATE_TEXT[state] || state}`;
  if (session.error) return;              // keep the reason on screen
  if (state === 3) hideStatus();
  else showStatus(STATE_TEXT[state] || '');
}

function onError(status) {
  if (session.error) return;              // the first reason is the real one
  session.error = { code: status.code, message: status.message || '' };
  document.body.dataset.error = String(status.code);
  const { text, detail } = describeError(status.code, status.message);
  showStatus(text, detail, true);
}

// -- display -----------------------------------------------------------------------------

function fitDisplay(display) {
  const width = display.getWidth();
  const height = display.getHeight();
  if (!width || !height) return;
  // Fit the window, but never blow pixels up: console text stays sharp.
  display.scale(Math.min(1, window.innerWidth / width, window.innerHeight / height));
}

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

// -- input -------------------------------------------------------------------------------

function attachInput(client, display) {
  const element = display.getElement();
  const send = (event) => client.sendMouseState(event.state, true);

  const mouse = new Guacamole.Mouse(element);
  mouse.onEach(['mousedown', 'mousemove', 'mouseup'], send);
  const touch = new Guacamole.Mouse.Touchscreen(element);
  touch.onEach(['mousedown', 'mousemove', 'mouseup'], send);

  const keyboard = new Guacamole.Keyboard(document);
  keyboard.onkeydown = (keysym) => { client.sendKeyEvent(1, keysym); };
  keyboard.onkeyup = (keysym) => { client.sendKeyEvent(0, keysym); };
  // Keys held when the window loses focus would otherwise stay down on the server.
  window.addEventListener('blur', () => keyboard.reset());
  return { mouse, touch, keyboard };
}

// -- start -------------------------------------------------------------------------------

function start() {
  const link = readLink();
  if (!link.token) {
    showStatus('This page needs a console link with a token.',
      'Open the full URL you were given; each link works once.', true);
    return;
  }

  const tunnel = new Guacamole.WebSocketTunnel(tunnelUrl());
  const client = new Guacamole.Client(tunnel);
  const display = client.getDisplay();
  session.client = client;
  session.display = display;

  $('display').appendChild(display.getElement());
  display.onresize = () => fitDisplay(display);
  client.onstatechange = onState;
  client.onerror = onError;
  tunnel.onerror = onError;

  attachInput(client, display);
  window.addEventListener('resize', debounce(() => {
    fitDisplay(display);
    if (session.state === 3) client.sendSize(window.innerWidth, window.innerHeight);
  }, RESIZE_DEBOUNCE_MS));
  window.addEventListener('pagehide', () => client.disconnect());

  client.connect(connectQuery(link));
}

start();
