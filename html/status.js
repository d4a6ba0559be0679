// What a person should read for each Guacamole client state and status code: what happened
// and what to do about it. The numbers are guacamole-common-js's, by name.
import Guacamole from './vendor/guacamole-common.js';

const { Code } = Guacamole.Status;
const { State } = Guacamole.Client;

export const STATE_TEXT = {
  [State.IDLE]: 'Starting…',
  [State.CONNECTING]: 'Connecting…',
  [State.WAITING]: 'Waiting for the server…',
  [State.CONNECTED]: 'Connected',
  [State.DISCONNECTING]: 'Disconnecting…',
  [State.DISCONNECTED]: 'Disconnected',
};

const ERRORS = {
  [Code.UNSUPPORTED]: ['The server does not support this kind of console.',
    'Ask whoever gave you the link for another way in.'],
  [Code.SERVER_ERROR]: ['The console service ran into an internal error.',
    'Try again in a minute.'],
  [Code.SERVER_BUSY]: ['The console service is too busy right now.', 'Try again in a moment.'],
  [Code.UPSTREAM_TIMEOUT]: ['The server did not answer in time.',
    'Check your network; the page retries.'],
  [Code.UPSTREAM_ERROR]: ['The console server refused the connection.',
    'The server may be restarting; the page retries.'],
  [Code.RESOURCE_NOT_FOUND]: ['The console could not be found.', 'Ask for a new console link.'],
  [Code.RESOURCE_CONFLICT]: ['The console is in use elsewhere.',
    'Close the other session and retry.'],
  [Code.RESOURCE_CLOSED]: ['The console is no longer available.', 'Ask for a new console link.'],
  [Code.UPSTREAM_NOT_FOUND]: ["The server's console could not be reached.",
    'The machine may be off or still booting; the page retries.'],
  [Code.UPSTREAM_UNAVAILABLE]: ['The console service is unavailable right now.',
    'Try again later.'],
  [Code.SESSION_CONFLICT]: ['The console was taken over by another session.',
    'Someone reopened it; close this tab.'],
  [Code.SESSION_TIMEOUT]: ['The console session ended because it was inactive.',
    'Ask for a new console.'],
  [Code.SESSION_CLOSED]: ['The console session has ended.',
    'Its time was up or it was closed. Ask for a new console if you need one.'],
  [Code.CLIENT_BAD_REQUEST]: ['The console request was malformed.', 'Reload the page.'],
  // Our server says this of a used or expired link; guacd says it of a login the server
  // refused. The detail line carries whose words they are.
  [Code.CLIENT_UNAUTHORIZED]: [
    'Access was refused: the console link was used or has expired, or the server refused'
      + ' the login.',
    'Ask for a new console; if the login was refused, check the credentials behind it.'],
  [Code.CLIENT_FORBIDDEN]: ['You are not allowed to open this console.', 'Ask for access.'],
  [Code.CLIENT_TIMEOUT]: ['The browser stopped answering, so the console was closed.',
    'Check your network; the page retries.'],
  [Code.CLIENT_OVERRUN]: ['Too much data was sent to the console.', 'Reload the page.'],
  [Code.CLIENT_BAD_TYPE]: ['The browser sent data the console does not accept.',
    'Reload the page.'],
  [Code.CLIENT_TOO_MANY]: ['Too many consoles or connection attempts.',
    'Wait a minute (or close another console) and try again.'],
};

// Worth an automatic reconnect: the network or the far side hiccupped, the console lives.
export const RECOVERABLE = new Set([Code.SERVER_ERROR, Code.UPSTREAM_TIMEOUT,
  Code.UPSTREAM_ERROR, Code.UPSTREAM_NOT_FOUND, Code.UPSTREAM_UNAVAILABLE, Code.CLIENT_TIMEOUT]);

/** The status to show when the page's own API refused (HTTP *status*) before any tunnel. */
export function statusOfRefusal(status) {
  return { 403: Code.CLIENT_UNAUTHORIZED, 429: Code.CLIENT_TOO_MANY }[status]
    ?? Code.SERVER_ERROR;
}

export const hex = (code) => '0x' + code.toString(16).toUpperCase().padStart(4, '0');

/** { text, detail, hint }: a sentence, the server's own words with the code, what to do. */
export function describeError(code, message) {
  const [text, hint] = ERRORS[code] || ['The console connection failed.', 'Reload the page.'];
  const own = message && !/^\d+$/.test(message) ? `${message} ` : '';
  return { text, detail: `${own}(code ${hex(code)})`, hint };
}
