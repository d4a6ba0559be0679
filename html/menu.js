// The Ctrl-Alt-Shift menu: a panel of controls over the console. It only wires buttons to
// the controller's actions; what the actions do lives in console.js.
import { LAYOUT_NAMES, layoutLabel } from './layouts.js';

const $ = (id) => document.getElementById(id);

function fillSelect(select, options, value) {
  select.replaceChildren(...options.map(([v, label]) => new Option(label, v, false, v === value)));
}

function timeZones(current) {
  const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : [];
  return zones.includes(current) ? zones : [current, ...zones];
}

const SHARE_STATES = {
  pending: 'not opened yet', joined: 'opened, not watching now', watching: 'watching now',
  revoked: 'revoked', ended: 'ended', expired: 'expired unused',
};

export function createMenu(actions, prefs) {
  const menu = $('menu');
  const handle = $('menu-handle');
  let returnFocus = null;

  const isOpen = () => !menu.hidden;
  const open = () => {
    if (isOpen()) return;
    returnFocus = document.activeElement;
    menu.hidden = false;
    handle.setAttribute('aria-expanded', 'true');
    document.body.classList.add('menu-open');
    actions.onOpen();
    menu.querySelector('button, select, input, textarea').focus();
  };
  const close = () => {
    if (!isOpen()) return;
    menu.hidden = true;
    handle.setAttribute('aria-expanded', 'false');
    document.body.classList.remove('menu-open');
    if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
    else document.activeElement?.blur();
  };
  const toggle = () => (isOpen() ? close() : open());

  handle.addEventListener('click', toggle);
  $('menu-close').addEventListener('click', close);
  menu.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') { event.stopPropagation(); close(); }
  });

  // Session
  $('extend').addEventListener('click', () => actions.extend());
  $('fullscreen').addEventListener('click', () => actions.toggleFullscreen());
  const closeButton = $('close-session');
  let armed = null;
  closeButton.addEventListener('click', () => {
    if (!armed) {            // a second click within 4 s confirms: work may be lost
      closeButton.textContent = 'Click again to close for good';
      armed = setTimeout(() => { armed = null; closeButton.textContent = 'Close session'; }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    closeButton.textContent = 'Close session';
    close();
    actions.closeSession();
  });

  // Share
  $('share-view').addEventListener('click', () => actions.share('view'));
  $('share-control').addEventListener('click', () => actions.share('control'));
  $('share-copy').addEventListener('click', () => {
    $('share-link').select();
    navigator.clipboard?.writeText($('share-link').value).catch(() => {});
  });

  // Keys
  menu.querySelectorAll('[data-keys]').forEach((button) => {
    button.addEventListener('click', () => actions.sendCombo(button.dataset.keys));
  });
  fillSelect($('fkey'), Array.from({ length: 12 }, (_, i) => [String(i + 1), `F${i + 1}`]), '1');
  $('send-fkey').addEventListener('click', () => actions.sendFkey(Number($('fkey').value)));

  // Input method and mouse emulation
  const radios = (name, value, onChange) => {
    menu.querySelectorAll(`input[name="${name}"]`).forEach((radio) => {
      radio.checked = radio.value === value;
      radio.addEventListener('change', () => { if (radio.checked) onChange(radio.value); });
    });
  };
  radios('input', prefs.input, (v) => actions.setPref('input', v));
  radios('mouse', prefs.mouse, (v) => actions.setPref('mouse', v));

  // Display
  $('zoom-fit').addEventListener('click', () => actions.zoom('fit'));
  $('zoom-100').addEventListener('click', () => actions.zoom(1));
  $('zoom-in').addEventListener('click', () => actions.zoom('in'));
  $('zoom-out').addEventListener('click', () => actions.zoom('out'));

  // Language and time zone
  fillSelect($('layout'), LAYOUT_NAMES.map((n) => [n, layoutLabel(n)]), prefs.layout);
  $('layout').addEventListener('change', (e) => actions.setPref('layout', e.target.value));
  fillSelect($('timezone'), timeZones(prefs.timezone).map((z) => [z, z]), prefs.timezone);
  $('timezone').addEventListener('change', (e) => actions.setPref('timezone', e.target.value));

  return {
    toggle, open, close, isOpen,
    showZoom(scale, fit) {
      $('zoom-level').textContent = `${Math.round(scale * 100)} %`;
      $('zoom-fit').setAttribute('aria-pressed', String(fit));
    },
    showTimeLeft(text) { $('time-left').textContent = text; },
    showFullscreen(on) { $('fullscreen').setAttribute('aria-pressed', String(on)); },
    canExtend(yes) { $('extend').disabled = !yes; $('banner-extend').disabled = !yes; },
    showShareLink(url) {
      $('share-link-box').hidden = !url;
      $('share-link').value = url || '';
    },
    showShares(shares) {
      $('share-list').replaceChildren(...shares.map((share) => {
        const item = document.createElement('li');
        item.dataset.share = share.id;
        item.dataset.state = share.state;
        const text = document.createElement('span');
        const who = share.viewer ? ` (${share.viewer})` : '';
        text.textContent = `${share.mode === 'view' ? 'View-only' : 'Control'} link:`
          + ` ${SHARE_STATES[share.state] || share.state}${share.watching ? who : ''}`;
        text.classList.toggle('watching', share.watching);
        item.append(text);
        if (['pending', 'joined', 'watching'].includes(share.state)) {
          const revoke = document.createElement('button');
          revoke.type = 'button';
          revoke.className = 'danger';
          revoke.textContent = 'Revoke';
          revoke.addEventListener('click', () => actions.revokeShare(share.id));
          item.append(revoke);
        }
        return item;
      }));
    },
    viewerMode(mode) {
      // A viewer neither extends, closes nor shares someone else's console.
      ['extend', 'close-session', 'share-section'].forEach((id) => { $(id).hidden = true; });
      $('menu-title').textContent = 'Shared console';
      $('viewer-note').hidden = false;
      $('viewer-note').textContent = mode === 'view'
        ? 'You are watching: your keys and mouse do not reach the console.'
        : 'Shared with control: your keys and mouse reach the console.';
    },
  };
}
