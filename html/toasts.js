// Small notes that come and go at the bottom of the page: Guacamole's own `msg` notices
// (guacd 1.5+ tells the console's owner when a viewer joins or leaves). Read out politely by
// screen readers; never in the way of the console for long.
const SHOWN_MS = 6000;

export function toast(text) {
  const box = document.getElementById('toasts');
  const note = document.createElement('p');
  note.className = 'toast';
  note.textContent = text;
  box.append(note);
  setTimeout(() => note.remove(), SHOWN_MS);
}
