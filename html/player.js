// The player page: plays a console's recording (guacd's own protocol) with
// Guacamole.SessionRecording. The one-time player link's token arrives in the URL fragment,
// is traded once for a playback session kept in this tab, and the files are fetched with it.
// Two looks at the API: the session (what parts there are), then one file per part. With
// more than one part, a list beside the display shows each part's first screen (a thumbnail
// guacbridge draws), fetched with the session as the files are once the list item is seen.
import Guacamole from './vendor/guacamole-common.js';

const $ = (id) => document.getElementById(id);
const base = location.pathname.replace(/\/+$/, '');
const consoleId = base.split('/').pop();
const storeKey = `guacbridge-playback:${consoleId}`;

const player = { secret: null, files: [], recording: null, part: 0, dragging: false };

// For people and for automated browser tests alike.
window.guacbridgePlayer = {
  get recording() { return player.recording; },
  get display() { return player.recording?.getDisplay() ?? null; },
  get state() { return document.body.dataset.state; },
  get part() { return player.part; },
};

function setState(state) { document.body.dataset.state = state; }

function showStatus(text, detail = '', isError = false) {
  $('status-text').textContent = text;
  $('status-detail').textContent = detail;
  $('status').classList.toggle('error', isError);
  $('status').hidden = false;
}

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

async function api(path, options = {}) {
  const headers = { 'Content-Type': 'application/json', ...(options.headers || {}) };
  if (player.secret) headers['X-Playback-Session'] = player.secret;
  const response = await fetch(`${base}/${path}`, { ...options, headers, cache: 'no-store' });
  if (!response.ok) {
    const data = await response.json().catch(() => ({ details: response.statusText }));
    throw Object.assign(new Error(data.details), { status: response.status });
  }
  return response;
}

async function startSession() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (location.hash) history.replaceState(null, '', location.pathname);
  if (token) {
    const info = await (await api('session', {
      method: 'POST', body: JSON.stringify({ token }),
    })).json();
    player.secret = info.session;
    sessionStorage.setItem(storeKey, JSON.stringify(info));
    return info;
  }
  const saved = sessionStorage.getItem(storeKey);
  if (!saved) throw Object.assign(new Error('Open the full player link you were given.'),
    { status: 403 });
  const info = JSON.parse(saved);
  player.secret = info.session;
  return info;
}

function fit() {
  const display = player.recording?.getDisplay();
  if (!display || !display.getWidth()) return;
  const screen = $('screen');
  display.scale(Math.min(1, screen.clientWidth / display.getWidth(),
    screen.clientHeight / display.getHeight()));
}

function showPosition() {
  const rec = player.recording;
  if (!rec) return;
  if (!player.dragging) $('seek').value = String(rec.getPosition());
  $('position').textContent = `${clock(rec.getPosition())} / ${clock(rec.getDuration())}`;
}

const THUMB_WIDTH = 160;         // CSS pixels; fetched for the screen's pixel density

// A part's thumbnail, fetched (the session is a header, never in a URL) when it comes into
// view, shown from a blob: URL, which the page's Content-Security-Policy allows for images.
async function showThumbnail(img) {
  const width = Math.round(THUMB_WIDTH * Math.min(2, window.devicePixelRatio || 1));
  try {
    const response = await api(`file/${img.dataset.part}/thumbnail?width=${width}`);
    img.src = URL.createObjectURL(await response.blob());
    await img.decode();
    img.height = Math.round(THUMB_WIDTH * img.naturalHeight / img.naturalWidth);
    img.dataset.state = 'loaded';
  } catch (e) {
    img.dataset.state = 'missing';
    img.title = e.message || 'No picture of this part';
  }
}

const thumbnails = new IntersectionObserver((entries, observer) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    observer.unobserve(entry.target);
    showThumbnail(entry.target);
  }
}, { root: $('parts'), rootMargin: '200px' });

function partItem(file) {
  const item = document.createElement('li');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'player-part';
  button.dataset.part = String(file.part);
  const img = new Image(THUMB_WIDTH, Math.round(THUMB_WIDTH * 3 / 4));
  img.alt = `First screen of part ${file.part + 1}`;
  img.loading = 'lazy';
  img.decoding = 'async';
  img.dataset.part = String(file.part);
  const label = document.createElement('span');
  label.textContent = `Part ${file.part + 1} (${clock(file.duration * 1000)})`;
  button.append(img, label);
  button.addEventListener('click', () => load(file.part));
  item.append(button);
  thumbnails.observe(img);
  return item;
}

function showParts(files) {
  $('parts-list').replaceChildren(...files.map(partItem));
  $('parts').hidden = files.length < 2;
  document.body.classList.toggle('with-parts', files.length >= 2);
}

async function load(part) {
  player.recording?.pause();
  player.part = part;
  for (const button of document.querySelectorAll('.player-part')) {
    if (button.dataset.part === String(part)) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  setState('loading');
  showStatus('Loading the recording…');
  $('play').disabled = true;
  $('seek').disabled = true;
  // Streamed through a StaticHTTPTunnel: guacamole-common-js 1.5.0's SessionRecording
  // loses a Blob given to it (it parses its own, still unset, copy), a tunnel works.
  const tunnel = new Guacamole.StaticHTTPTunnel(`${base}/file/${part}`, false,
    { 'X-Playback-Session': player.secret });
  const recording = new Guacamole.SessionRecording(tunnel);
  player.recording = recording;
  const display = recording.getDisplay();
  $('display').replaceChildren(display.getElement());
  display.onresize = fit;

  recording.onprogress = (duration) => {
    $('position').textContent = `loading… ${clock(duration)}`;
  };
  recording.onload = () => {
    $('status').hidden = true;
    $('seek').max = String(recording.getDuration());
    $('play').disabled = false;
    $('seek').disabled = false;
    setState('paused');
    showPosition();
    recording.seek(0, fit);   // the first frame, drawn
  };
  recording.onerror = (message) => {
    setState('error');
    showStatus('The recording cannot be played.', message, true);
  };
  recording.onplay = () => { setState('playing'); $('play').textContent = 'Pause'; };
  recording.onpause = () => {
    const atEnd = recording.getPosition() >= recording.getDuration();
    setState(atEnd ? 'ended' : 'paused');
    $('play').textContent = atEnd ? 'Play again' : 'Play';
    showPosition();
  };
  recording.onseek = showPosition;
  recording.connect();
}

$('play').addEventListener('click', () => {
  const rec = player.recording;
  if (!rec) return;
  if (rec.isPlaying()) rec.pause();
  else if (rec.getPosition() >= rec.getDuration()) rec.seek(0, () => rec.play());
  else rec.play();
});
$('seek').addEventListener('input', () => { player.dragging = true; });
$('seek').addEventListener('change', () => {
  player.dragging = false;
  player.recording?.seek(Number($('seek').value));
});
window.addEventListener('resize', fit, { passive: true });
setInterval(showPosition, 250);

async function start() {
  try {
    const info = await startSession();
    player.files = info.files;
    showParts(info.files);
    await load(info.files[0].part);
  } catch (e) {
    sessionStorage.removeItem(storeKey);
    setState('error');
    showStatus(e.status === 403 ? 'This player link cannot be used.'
      : 'The recording cannot be loaded.', e.message, true);
  }
}

start();
