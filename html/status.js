// What a person should read for each Guacamole client state and status code: what happened
// and what to do about it.

export const STATE_TEXT = {
  0: 'Starting…',
  1: 'Connecting…',
  2: 'Waiting for the server…',
  3: 'Connected',
  4: 'Disconnecting…',
  5: 'Disconnected',
};

const ERRORS = {
  0x0100: ['The server does not support this kind of console.',
    'Ask whoever gave you the link for another way in.'],
  0x0200: ['The console service ran into an internal error.', 'Try again in a minute.'],
  0x0201: ['The console service is too busy right now.', 'Try again in a moment.'],
  0x0202: ['The server did not answer in time.', 'Check your network; the page retries.'],
  0x0203: ['The console server refused the connection.',
    'The server may be restarting; the page retries.'],
  0x0204: ['The console could not be found.', 'Ask for a new console link.'],
  0x0205: ['The console is in use elsewhere.', 'Close the other session and retry.'],
  0x0206: ['The console is no longer available.', 'Ask for a new console link.'],
  0x0207: ["The server's console could not be reached.",
    'The machine may be off or still booting; the page retries.'],
  0x0208: ['The console service is unavailable right now.', 'Try again later.'],
  0x0209: ['The console was taken over by another session.',
    'Someone reopened it; close this tab.'],
  0x020A: ['The console session ended because it was inactive.', 'Ask for a new console.'],
  0x020B: ['The console session has ended.',
    'Its time was up or it was closed. Ask for a new console if you need one.'],
  0x0300: ['The console request was malformed.', 'Reload the page.'],
  // Our server says this of a used or expired link; guacd says it of a login the server
  // refused. The detail line carries whose words they are.
  0x0301: ['Access was refused: the console link was used or has expired, or the server refused the login.',
    'Ask for a new console; if the login was refused, check the credentials behind it.'],
  0x0303: ['You are not allowed to open this console.', 'Ask for access.'],
  0x0308: ['The browser stopped answering, so the console was closed.',
    'Check your network; the page retries.'],
  0x030D: ['Too much data was sent to the console.', 'Reload the page.'],
  0x030F: ['The browser sent data the console does not accept.', 'Reload the page.'],
  0x031D: ['Too many consoles or connection attempts.',
    'Wait a minute (or close another console) and try again.'],
};

// Worth an automatic reconnect: the network or the far side hiccupped, the console lives.
export const RECOVERABLE = new Set([0x0200, 0x0202, 0x0203, 0x0207, 0x0208, 0x0308]);

export const hex = (code) => '0x' + code.toString(16).toUpperCase().padStart(4, '0');

/** { text, detail, hint }: a sentence, the server's own words with the code, what to do. */
export function describeError(code, message) {
  const [text, hint] = ERRORS[code] || ['The console connection failed.', 'Reload the page.'];
  const own = message && !/^\d+$/.test(message) ? `${message} ` : '';
  return { text, detail: `${own}(code ${hex(code)})`, hint };
}
