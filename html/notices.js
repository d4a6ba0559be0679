// guacbridge's own notices to the page: the one place that knows how they arrive, beside
// Guacamole's protocol and apart from its statuses. The service sends two:
//  - the restart instruction (opcode RESTART_OPCODE, web/drain.py): the service is going
//    away, and the page should move to a new tunnel now;
//  - the new reconnect secret (opcode SECRET_OPCODE, sessions.py), sent right after each
//    resume: the page uses it from now on instead of the one it connected with;
//  - the idle warning, a `msg` with guacbridge's code MSG_IDLE_WARNING (the tunnel's):
//    the console closes in args[0] seconds unless a key or the mouse is used.
// guacamole-common-js ignores an opcode it does not know, and hands every `msg` to
// Client.onmsg; Guacamole's own `msg` codes (user joined, user left) go on to its defaults.

export const RESTART_OPCODE = 'guacbridge-restart';
export const SECRET_OPCODE = 'guacbridge-session';
export const MSG_IDLE_WARNING = 0x4701;

/**
 * Hand guacbridge's notices on this tunnel and its client to handlers.restart(notice),
 * handlers.secret(newSecret) and handlers.idleWarning(seconds). Call it after
 * `new Guacamole.Client(tunnel)`, which installs the tunnel's own instruction handler:
 * everything else still goes there.
 */
export function listenForNotices(tunnel, client, handlers) {
  const guacamole = tunnel.oninstruction;
  tunnel.oninstruction = (opcode, args) => {
    if (opcode === RESTART_OPCODE) handlers.restart(args[0]);
    else if (opcode === SECRET_OPCODE) handlers.secret(args[0]);
    else return guacamole(opcode, args);
    return undefined;
  };
  client.onmsg = (code, args) => {
    if (code !== MSG_IDLE_WARNING) return true;
    handlers.idleWarning(Number(args[0]));
    return false;
  };
}
