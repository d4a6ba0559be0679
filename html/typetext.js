// "Type text" in the menu: text sent to the server as keystrokes, one key press and release
// per character, for the consoles that have no clipboard (a text login, an installer, a
// BIOS). Characters of the page's keyboard layout go as their own keysyms; any other as a
// Unicode keysym (0x01000000 + code point); a newline is Return, a tab is Tab. Paced (a
// slow server loses keys sent in a burst) and stoppable at any character.
import { buildLayout } from './layouts.js';
import { KEY } from './input.js';

const $ = (id) => document.getElementById(id);
export const DEFAULT_DELAY_MS = 25;
export const CONFIRM_ABOVE = 4000;     // characters: a longer text is typed after a yes

// What a single character's keysym is when no layout key says otherwise: Latin-1 characters
// are their own keysyms (X servers take no Unicode keysym for them), the rest Unicode keysyms.
// Guacamole's on-screen keyboard derives a key's keysym from its title the same way.
const plainKeysym = (cp) => (cp < 0x100 ? cp : 0x01000000 + cp);

const layoutKeys = new Map();          // layout name → Map character → keysym its key sends
function keysOf(layoutName) {
  if (!layoutKeys.has(layoutName)) {
    const keys = new Map([[' ', 0x20]]);
    for (const caps of Object.values(buildLayout(layoutName).keys)) {
      for (const cap of caps) {
        const chars = [...cap.title];
        if (chars.length === 1 && !cap.modifier && !keys.has(cap.title)) {
          keys.set(cap.title, cap.keysym ?? plainKeysym(cap.title.codePointAt(0)));
        }
      }
    }
    layoutKeys.set(layoutName, keys);
  }
  return layoutKeys.get(layoutName);
}

/** The keysyms that type *text* with *layoutName*'s keyboard: its keys' keysyms, Unicode
 * keysyms for what it lacks (control characters other than newline and tab are left out;
 * CR LF is one Return). */
export function keysymsFor(text, layoutName) {
  const keys = keysOf(layoutName);
  const out = [];
  for (const char of text.replace(/\r\n?/g, '\n')) {
    const cp = char.codePointAt(0);
    if (char === '\n') out.push(KEY.RETURN);
    else if (char === '\t') out.push(KEY.TAB);
    else if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) continue;
    else out.push(keys.get(char) ?? plainKeysym(cp));
  }
  return out;
}

/**
 * Wires the menu's Type text section to *sink* (the live connection's key(pressed, keysym)),
 * typing with the layout *getLayout()* names at the moment Type is pressed.
 */
export function createTypeText(sink, getLayout) {
  const field = $('typetext');
  const delay = $('typetext-delay');
  const progress = $('typetext-progress');
  const status = $('typetext-status');
  const typeButton = $('typetext-type');
  const clipButton = $('typetext-clipboard');
  const stopButton = $('typetext-stop');
  let run = null;                      // { stopped } while typing

  delay.value = String(DEFAULT_DELAY_MS);
  const say = (text) => { status.textContent = text; };

  async function type(text) {
    if (run) return;
    const keysyms = keysymsFor(text, getLayout());
    if (!keysyms.length) { say('Nothing to type.'); return; }
    if (keysyms.length > CONFIRM_ABOVE && !window.confirm(
      `Type ${keysyms.length} characters into the console? This takes about`
      + ` ${Math.ceil((keysyms.length * pace()) / 1000)} s.`)) {
      say('Not typed.');
      return;
    }
    const current = { stopped: false };
    run = current;
    typeButton.disabled = clipButton.disabled = true;
    stopButton.hidden = false;
    progress.hidden = false;
    progress.max = keysyms.length;
    let done = 0;
    for (const keysym of keysyms) {
      if (current.stopped) break;
      sink.key(1, keysym);
      sink.key(0, keysym);
      done += 1;
      progress.value = done;
      say(`Typing… ${done} of ${keysyms.length}`);
      // eslint-disable-next-line no-await-in-loop
      await new Promise((resolve) => { setTimeout(resolve, pace()); });
    }
    run = null;
    typeButton.disabled = clipButton.disabled = false;
    stopButton.hidden = true;
    progress.hidden = true;
    say(current.stopped ? `Stopped after ${done} of ${keysyms.length} characters.`
      : `Typed ${done} characters.`);
    document.body.dataset.typed = String(done);
  }

  function pace() {
    const ms = Number(delay.value);
    return Number.isFinite(ms) ? Math.min(1000, Math.max(5, ms)) : DEFAULT_DELAY_MS;
  }

  typeButton.addEventListener('click', () => type(field.value));
  clipButton.addEventListener('click', async () => {
    let text;
    try {
      text = await navigator.clipboard.readText();     // under this click, or not at all
    } catch {
      say('The browser did not let the page read the clipboard.');
      return;
    }
    type(text);
  });
  stopButton.addEventListener('click', () => { if (run) run.stopped = true; });
  return { stop() { if (run) run.stopped = true; }, get typing() { return Boolean(run); } };
}
