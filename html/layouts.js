// On-screen keyboard layouts for Guacamole.OnScreenKeyboard: en-us, de-de, fr-fr.
// Each character row lists its keys, two spaces apart, as "base shifted [altgr]"; build()
// turns that into the
// layout object guacamole-common-js expects (keys by name, rows of key names, widths).

const K = {
  BackSpace: 0xFF08, Tab: 0xFF09, Return: 0xFF0D, Escape: 0xFF1B, Delete: 0xFFFF,
  Shift: 0xFFE1, ShiftR: 0xFFE2, Ctrl: 0xFFE3, Alt: 0xFFE9, AltGr: 0xFE03, Super: 0xFFEB,
  Caps: 0xFFE5, Left: 0xFF51, Up: 0xFF52, Right: 0xFF53, Down: 0xFF54, Space: 0x20,
};

const LAYOUTS = {
  'en-us': {
    language: 'en_US', label: 'English (US)', rdp: 'en-us-qwerty',
    rows: [
      '` ~  1 !  2 @  3 #  4 $  5 %  6 ^  7 &  8 *  9 (  0 )  - _  = +',
      'q Q  w W  e E  r R  t T  y Y  u U  i I  o O  p P  [ {  ] }  \\ |',
      'a A  s S  d D  f F  g G  h H  j J  k K  l L  ; :  \' "',
      'z Z  x X  c C  v V  b B  n N  m M  , <  . >  / ?',
    ],
  },
  'de-de': {
    language: 'de_DE', label: 'Deutsch', rdp: 'de-de-qwertz',
    rows: [
      '^ °  1 !  2 " ²  3 § ³  4 $  5 %  6 &  7 / {  8 ( [  9 ) ]  0 = }  ß ? \\  ´ `',
      'q Q @  w W  e E €  r R  t T  z Z  u U  i I  o O  p P  ü Ü  + * ~',
      'a A  s S  d D  f F  g G  h H  j J  k K  l L  ö Ö  ä Ä  # \'',
      '< > |  y Y  x X  c C  v V  b B  n N  m M µ  , ;  . :  - _',
    ],
  },
  'fr-fr': {
    language: 'fr_FR', label: 'Français', rdp: 'fr-fr-azerty',
    rows: [
      '² ³  & 1  é 2 ~  " 3 #  \' 4 {  ( 5 [  - 6 |  è 7 `  _ 8 \\  ç 9 ^  à 0 @  ) ° ]  = + }',
      'a A  z Z  e E €  r R  t T  y Y  u U  i I  o O  p P  ^ ¨  $ £ ¤',
      'q Q  s S  d D  f F  g G  h H  j J  k K  l L  m M  ù %  * µ',
      '< >  w W  x X  c C  v V  b B  n N  , ?  ; .  : /  ! §',
    ],
  },
};

// Rows are 15 key units wide. Rows 0..3 get a lead-in key of fixed width and a tail key
// that takes what is left (or a gap where a row has no tail key).
const WIDTH = 15;
const FRAME = [
  { head: [], tail: 'BackSpace' },
  { head: [['Tab', 1.5]], tail: null },
  { head: [['Caps', 1.75]], tail: 'Return' },
  { head: [['Shift', 1.25]], tail: 'ShiftR' },
];
const LABELS = { BackSpace: '⌫', Tab: 'Tab', Return: 'Enter', Caps: 'Caps', Shift: 'Shift',
  ShiftR: 'Shift', Ctrl: 'Ctrl', Alt: 'Alt', AltGr: 'AltGr', Super: 'Super', Space: ' ',
  Escape: 'Esc', Delete: 'Del', Left: '←', Up: '↑', Right: '→', Down: '↓' };
const MODIFIERS = { Shift: 'shift', ShiftR: 'shift', Ctrl: 'control', Alt: 'alt',
  AltGr: 'alt-gr', Caps: 'caps' };

function keyCaps(base, shifted, altgr) {
  const letter = base.toLowerCase() !== base.toUpperCase() && shifted === base.toUpperCase();
  const caps = [{ title: base }, { title: shifted, requires: ['shift'] }];
  if (letter) {
    caps.push({ title: shifted, requires: ['caps'] });
    caps.push({ title: base, requires: ['caps', 'shift'] });
  }
  if (altgr) caps.push({ title: altgr, requires: ['alt-gr'] });
  return caps;
}

function build(name) {
  const spec = LAYOUTS[name];
  const keys = {};
  const keyWidths = {};
  const rows = [];
  const special = (key, width) => {
    keys[key] = [{ title: LABELS[key] || key, keysym: K[key], modifier: MODIFIERS[key] }];
    if (width !== 1) keyWidths[key] = width;
    return key;
  };
  spec.rows.forEach((row, i) => {
    const names = FRAME[i].head.map(([key, width]) => special(key, width));
    const entries = row.split('  ');
    entries.forEach((entry, j) => {
      const [base, shifted = base, altgr] = entry.split(' ');
      const keyName = `k${i}_${j}`;
      keys[keyName] = keyCaps(base, shifted, altgr);
      names.push(keyName);
    });
    const used = FRAME[i].head.reduce((sum, [, width]) => sum + width, 0) + entries.length;
    if (FRAME[i].tail) names.push(special(FRAME[i].tail, WIDTH - used));
    else if (used < WIDTH) names.push(WIDTH - used);      // a number is a gap
    rows.push(names);
  });
  rows.push([['Ctrl', 1.5], ['Super', 1.25], ['Alt', 1.25], ['Space', 4.75], ['AltGr', 1.25],
    ['Escape', 1], ['Delete', 1], ['Left', 1], ['Down', 1], ['Right', 1]]
    .map(([key, width]) => special(key, width)));
  return { language: spec.language, type: 'qwerty', width: WIDTH, keys, keyWidths, layout: rows };
}

export const LAYOUT_NAMES = Object.keys(LAYOUTS);
export const layoutLabel = (name) => LAYOUTS[name].label;
export const rdpLayout = (name) => LAYOUTS[name].rdp;
export const buildLayout = build;
