// The clipboard, both ways: the menu's text area mirrors the server's clipboard, and what is
// typed there (or found in the browser's clipboard, where the browser allows reading it)
// goes to the server.
import Guacamole from './vendor/guacamole-common.js';

export function createClipboard(field) {
  let client = null;
  let last = '';

  const toServer = (text) => {
    if (!client || text === last) return;
    last = text;
    const writer = new Guacamole.StringWriter(client.createClipboardStream('text/plain'));
    writer.sendText(text);
    writer.sendEnd();
  };

  const fromServer = (stream, mimetype) => {
    if (!/^text\//.test(mimetype)) return;
    const reader = new Guacamole.StringReader(stream);
    let text = '';
    reader.ontext = (chunk) => { text += chunk; };
    reader.onend = () => {
      last = text;
      field.value = text;
      // Works only while the page has the focus; the text area still has the text.
      navigator.clipboard?.writeText(text).catch(() => {});
    };
  };

  let timer = null;
  field.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => toServer(field.value), 250);
  });

  // The browser's clipboard may have changed while the page was in the background.
  const pullLocal = () => {
    if (!navigator.clipboard?.readText || !document.hasFocus()) return;
    navigator.clipboard.readText().then((text) => {
      if (text && text !== last) {
        field.value = text;
        toServer(text);
      }
    }).catch(() => {});   // not allowed: the text area is the way
  };
  window.addEventListener('focus', pullLocal);

  return {
    attach(newClient) {
      client = newClient;
      client.onclipboard = fromServer;
      last = '';
    },
    pullLocal,
  };
}
