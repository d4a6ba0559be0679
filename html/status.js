// What a person should read for each Guacamole client state and status code.

export const STATE_TEXT = {
  0: 'Starting…',
  1: 'Connecting…',
  2: 'Waiting for the server…',
  3: 'Connected',
  4: 'Disconnecting…',
  5: 'Disconnected',
};

const ERROR_TEXT = {
  0x0100: 'The server does not support this kind of console.',
  0x0200: 'The console service ran into an internal error.',
  0x0201: 'The console service is too busy right now. Try again in a moment.',
  0x0202: 'The server did not answer in time.',
  0x0203: 'The console server refused the connection.',
  0x0204: 'The console could not be found.',
  0x0205: 'The console is in use elsewhere.',
  0x0206: 'The console is no longer available.',
  0x0207: "The server's console could not be reached.",
  0x0208: 'The console service is unavailable right now (guacd is not running). Try again later.',
  0x0209: 'The console was taken over by another session.',
  0x020A: 'The console session ended because it was inactive.',
  0x020B: 'The console session ended (time limit reached or closed by an administrator).',
  0x0300: 'The console request was malformed.',
  0x0301: 'This console link is not valid: it has already been used or has expired. Ask for a new console.',
  0x0303: 'You are not allowed to open this console.',
  0x0308: 'The browser stopped answering, so the console was closed.',
  0x030D: 'Too much data was sent to the console.',
  0x030F: 'The browser sent data the console does not accept.',
  0x031D: 'Too many consoles are open. Close one and try again.',
};

const hex = (code) => '0x' + code.toString(16).toUpperCase().padStart(4, '0');

/** A sentence, the server's own words (if any, and different) and the code. */
export function describeError(code, message) {
  const text = ERROR_TEXT[code] || 'The console connection failed.';
  const detail = message && !/^\d+$/.test(message) ? message : '';
  return { text, detail: detail ? `${detail} (code ${hex(code)})` : `(code ${hex(code)})` };
}
