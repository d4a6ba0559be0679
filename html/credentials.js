// Credentials on demand: guacd's `required` names the connection parameters it lacks (a VNC
// password, an RDP user name, password and domain) and then waits for them. The page asks
// the person in a dialog and hands the answers to guacd as `argv` streams, one per name.
// What is typed here goes to guacd only: never to storage, the service's API or a log. It
// is kept (in this tab's memory, nothing else) only when "Remember for this session" is
// ticked, to answer the same question again after a reconnect.
import Guacamole from './vendor/guacamole-common.js';

const $ = (id) => document.getElementById(id);
const LABELS = { username: 'Username', password: 'Password', domain: 'Domain',
  passphrase: 'Passphrase' };
const MASKED = new Set(['password', 'passphrase']);

let remembered = null;             // Map name → value, only after "Remember" was ticked

/** The label a requested parameter gets: guacd's name, in words. */
export function labelOf(name) {
  return LABELS[name] || name.charAt(0).toUpperCase() + name.slice(1).replace(/-/g, ' ');
}

function send(client, answers) {
  for (const [name, value] of answers) {
    const writer = new Guacamole.StringWriter(
      client.createArgumentValueStream('text/plain', name));
    writer.sendText(value);
    writer.sendEnd();
  }
}

/**
 * The dialog's controller. ask(client, names) answers guacd's `required` (from memory when
 * everything asked was remembered, otherwise through the dialog); onCancel() runs when the
 * person cancels; hide() takes the dialog away (the connection ended meanwhile).
 */
export function createCredentials({ onCancel, onShow }) {
  const dialog = $('credentials');
  const form = $('credentials-form');
  const fields = $('credentials-fields');
  const remember = $('credentials-remember');
  let pending = null;              // { client, names } while the dialog is up

  const hide = () => {
    dialog.hidden = true;
    fields.replaceChildren();      // the typed values go with their inputs
    pending = null;
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!pending) return;
    const answers = new Map(pending.names.map((name) => [name,
      form.querySelector(`[data-name="${CSS.escape(name)}"]`).value]));
    remembered = remember.checked ? answers : null;
    const { client } = pending;
    hide();
    send(client, answers);
  });
  $('credentials-cancel').addEventListener('click', () => {
    if (!pending) return;
    remembered = null;
    hide();
    onCancel();
  });
  // Keys typed here stay here: the page's keyboard handler leaves a field of ours alone.
  dialog.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') $('credentials-cancel').click();
  });

  return {
    hide,
    ask(client, names) {
      const known = remembered;
      if (known && names.every((name) => known.has(name))) {
        send(client, names.map((name) => [name, known.get(name)]));
        return;
      }
      pending = { client, names: [...new Set(names)] };
      fields.replaceChildren(...pending.names.map((name) => {
        const label = document.createElement('label');
        label.className = 'field';
        const input = document.createElement('input');
        input.dataset.name = name;
        input.type = MASKED.has(name) ? 'password' : 'text';
        input.autocomplete = MASKED.has(name) ? 'current-password'
          : name === 'username' ? 'username' : 'off';
        input.spellcheck = false;
        input.value = known?.get(name) ?? '';
        label.append(labelOf(name), input);
        return label;
      }));
      remember.checked = Boolean(known);
      onShow?.();
      dialog.hidden = false;
      fields.querySelector('input').focus();
    },
  };
}
