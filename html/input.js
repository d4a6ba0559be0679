// Everything the person types, taps or clicks on the display, turned into key and mouse
// events for the remote side. `sink` is the live connection ({ key(pressed, keysym),
// mouse(state) }); it changes on reconnect, the handlers here do not.
import Guacamole from './vendor/guacamole-common.js';
import { buildLayout } from './layouts.js';

export const KEY = {
  CTRL: 0xFFE3, CTRL_R: 0xFFE4, ALT: 0xFFE9, ALT_R: 0xFFEA, SHIFT: 0xFFE1, SHIFT_R: 0xFFE2,
  SUPER: 0xFFEB, DELETE: 0xFFFF, END: 0xFF57, KP_END: 0xFFB1, BACKSPACE: 0xFF08, TAB: 0xFF09,
  RETURN: 0xFF0D, ESCAPE: 0xFF1B, PRINT: 0xFF61, F1: 0xFFBE,
};

/** The keysym that types *char* (Latin-1 directly, the rest as Unicode keysyms). */
export function keysymOf(char) {
  const cp = char.codePointAt(0);
  if (cp === 0x0A || cp === 0x0D) return KEY.RETURN;
  if (cp === 0x09) return KEY.TAB;
  return cp < 0x100 ? cp : (0x01000000 | cp);
}

/** Press the keys in order, then release them in reverse: a combination. */
export function sendCombo(sink, keysyms) {
  keysyms.forEach((k) => sink.key(1, k));
  [...keysyms].reverse().forEach((k) => sink.key(0, k));
}

export const COMBOS = {
  'ctrl-alt-del': [KEY.CTRL, KEY.ALT, KEY.DELETE],
  'ctrl-alt-backspace': [KEY.CTRL, KEY.ALT, KEY.BACKSPACE],
  'alt-tab': [KEY.ALT, KEY.TAB],
  super: [KEY.SUPER],
  print: [KEY.PRINT],
};
export const fkeyCombo = (n) => [KEY.CTRL, KEY.ALT, KEY.F1 + n - 1];

const isDown = (pressed, ...keysyms) => keysyms.some((k) => pressed[k]);

/**
 * The physical keyboard. Ctrl-Alt-Shift toggles the menu (and releases every key, so none
 * stays down on the server); Ctrl-Alt-End becomes Ctrl-Alt-Del; while a field of ours has
 * the focus, keys belong to it and not to the server.
 */
export function attachKeyboard(sink, { onMenuKey, ownsFocus }) {
  const keyboard = new Guacamole.Keyboard(document);
  const forwarded = new Map();   // keysym pressed → keysym sent for it

  keyboard.onkeydown = (keysym) => {
    const p = keyboard.pressed;
    if (isDown(p, KEY.CTRL, KEY.CTRL_R) && isDown(p, KEY.ALT, KEY.ALT_R)
        && isDown(p, KEY.SHIFT, KEY.SHIFT_R)) {
      keyboard.reset();          // fires onkeyup for each key still down
      onMenuKey();
      return false;
    }
    if (ownsFocus()) return true;
    let sent = keysym;
    if ((keysym === KEY.END || keysym === KEY.KP_END)
        && isDown(p, KEY.CTRL, KEY.CTRL_R) && isDown(p, KEY.ALT, KEY.ALT_R)) sent = KEY.DELETE;
    forwarded.set(keysym, sent);
    sink.key(1, sent);
    return false;
  };
  keyboard.onkeyup = (keysym) => {
    if (!forwarded.has(keysym)) return;
    sink.key(0, forwarded.get(keysym));
    forwarded.delete(keysym);
  };
  window.addEventListener('blur', () => keyboard.reset());
  return keyboard;
}

/**
 * Mouse and touch on the display element. A real mouse is always absolute; touch follows
 * the chosen emulation: touchscreen (absolute, tap = click) or touchpad (relative).
 */
export function attachPointer(element, sink, getMode) {
  const send = (event) => sink.mouse(event.state);
  new Guacamole.Mouse(element).onEach(['mousedown', 'mousemove', 'mouseup'], send);
  const touchscreen = new Guacamole.Mouse.Touchscreen(element);
  touchscreen.onEach(['mousedown', 'mousemove', 'mouseup'],
    (e) => { if (getMode() === 'absolute') send(e); });
  const touchpad = new Guacamole.Mouse.Touchpad(element);
  touchpad.onEach(['mousedown', 'mousemove', 'mouseup'],
    (e) => { if (getMode() === 'relative') send(e); });
}

/**
 * The text input panel: what is typed in its field goes to the server key by key; Ctrl
 * and Alt are sticky (they apply to the next key), Esc and Tab are sent at once.
 */
export function attachTextInput(panel, field, sink) {
  const sticky = new Map();      // name → keysym held down
  const STICKY = { ctrl: KEY.CTRL, alt: KEY.ALT };

  const releaseSticky = () => {
    for (const [name, keysym] of sticky) {
      sink.key(0, keysym);
      panel.querySelector(`[data-sticky="${name}"]`).setAttribute('aria-pressed', 'false');
    }
    sticky.clear();
  };
  const tap = (keysym) => { sink.key(1, keysym); sink.key(0, keysym); releaseSticky(); };

  panel.querySelectorAll('[data-sticky]').forEach((button) => {
    button.addEventListener('click', () => {
      const name = button.dataset.sticky;
      if (sticky.has(name)) {
        sink.key(0, sticky.get(name));
        sticky.delete(name);
        button.setAttribute('aria-pressed', 'false');
      } else {
        sticky.set(name, STICKY[name]);
        sink.key(1, STICKY[name]);
        button.setAttribute('aria-pressed', 'true');
      }
      field.focus();
    });
  });
  panel.querySelector('[data-tap="escape"]').addEventListener('click', () => {
    tap(KEY.ESCAPE); field.focus();
  });
  panel.querySelector('[data-tap="tab"]').addEventListener('click', () => {
    tap(KEY.TAB); field.focus();
  });

  // The field stays empty: each edit is turned into keystrokes and cancelled.
  field.addEventListener('beforeinput', (event) => {
    if (event.isComposing) return;
    if (event.inputType === 'insertText' || event.inputType === 'insertFromPaste') {
      for (const char of event.data || '') tap(keysymOf(char));
    } else if (event.inputType === 'insertLineBreak') {
      tap(KEY.RETURN);
    } else if (event.inputType === 'deleteContentBackward') {
      tap(KEY.BACKSPACE);
    }
    event.preventDefault();
  });
  // Text from an input method editor arrives when composition ends.
  field.addEventListener('compositionend', (event) => {
    for (const char of event.data || '') tap(keysymOf(char));
    field.value = '';
  });
  return { release: releaseSticky };
}

/** The on-screen keyboard for a layout name; the caller sizes it once it is shown. */
export function createOsk(container, sink, layoutName) {
  container.replaceChildren();
  const osk = new Guacamole.OnScreenKeyboard(buildLayout(layoutName));
  osk.onkeydown = (keysym) => sink.key(1, keysym);
  osk.onkeyup = (keysym) => sink.key(0, keysym);
  container.appendChild(osk.getElement());
  return osk;
}
