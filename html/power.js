// The menu's Power section, for a console opened with "power": true: the server's power
// state and the actions its agent offers, each behind a confirmation. It talks to the page's
// own API (console/<id>/power, authorised by the page's reconnect secret); the console itself
// stays open through a reset, and the page reconnects by itself if the tunnel drops.

const $ = (id) => document.getElementById(id);

// Each action's button, and the verb of its question ("Reset server web-12?").
const ACTIONS = {
  on: ['Start', 'Start'], shutdown: ['Shut down', 'Shut down'], off: ['Power off', 'Power off'],
  reboot: ['Reboot', 'Reboot'], reset: ['Reset', 'Reset'], cycle: ['Power cycle', 'Power cycle'],
};
const STATES = {
  on: 'The server is on.', off: 'The server is off.', unknown: 'Power state unknown.',
};
const WATCH_MS = 3000;           // after an action: re-read the state this often...
const WATCH_FOR_MS = 90000;      // ...for this long

export function createPower(pageApi) {
  const section = $('power-section');
  const confirmBox = $('power-confirm');
  let enabled = false;
  let name = '';
  let pending = null;              // the action waiting for its confirmation
  let watchUntil = 0;
  let watchTimer = null;

  function show(info) {
    name = info.name || 'this server';
    $('power-state').textContent = STATES[info.state] || STATES.unknown;
    section.dataset.state = info.state;
    $('power-actions').replaceChildren(...info.actions.map((action) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.power = action;
      button.textContent = (ACTIONS[action] || [action])[0];
      if (action !== 'on') button.className = 'danger';
      // What the state rules out is there but disabled: Start while on, the rest while off.
      button.disabled = (info.state === 'on' && action === 'on')
        || (info.state === 'off' && action !== 'on');
      button.addEventListener('click', () => ask(action));
      return button;
    }));
  }

  function ask(action) {
    pending = action;
    const [label, verb] = ACTIONS[action] || [action, action];
    $('power-confirm-text').textContent = `${verb} server ${name}?`;
    $('power-confirm-yes').textContent = label;
    confirmBox.hidden = false;
    $('power-confirm-no').focus();
  }

  function dismiss() {
    pending = null;
    confirmBox.hidden = true;
  }

  async function press() {
    const action = pending;
    dismiss();
    if (!action) return;
    $('power-status').textContent = `${ACTIONS[action]?.[0] || action}: sent…`;
    try {
      await pageApi('power', 'POST', { action });
      $('power-status').textContent = `${ACTIONS[action]?.[0] || action}: done by the server's`
        + ' power control. The console reconnects when the server is back.';
      watchUntil = Date.now() + WATCH_FOR_MS;
      watch();
    } catch (e) {
      $('power-status').textContent = `${ACTIONS[action]?.[0] || action} failed: ${e.message}`;
    }
  }

  async function refresh() {
    if (!enabled) return;
    try {
      show(await pageApi('power'));
    } catch (e) {
      $('power-state').textContent = `Power state unavailable: ${e.message}`;
    }
  }

  function watch() {
    clearTimeout(watchTimer);
    refresh();
    if (Date.now() < watchUntil) watchTimer = setTimeout(watch, WATCH_MS);
  }

  $('power-confirm-yes').addEventListener('click', press);
  $('power-confirm-no').addEventListener('click', dismiss);
  confirmBox.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') { event.stopPropagation(); dismiss(); }
  });
  // Fresh whenever the menu opens.
  new MutationObserver(() => { if (!$('menu').hidden) refresh(); })
    .observe($('menu'), { attributes: true, attributeFilter: ['hidden'] });

  /** A console opened for a server that is off: say so, offer Start, and once the console
   *  knows where its server is, *ready()* (the page connects). */
  function waitForStart(readInfo, ready) {
    const start = $('status-start');
    $('status-text').textContent = 'The server is off';
    $('status-detail').textContent = 'Start it to use its console.';
    $('status-hint').textContent = '';
    start.hidden = false;
    let polling = null;
    const check = async () => {
      try {
        const info = await readInfo();
        if (!info.waiting) {
          clearInterval(polling);
          start.hidden = true;
          $('status-text').textContent = 'Connecting…';
          $('status-detail').textContent = '';
          ready();
        }
      } catch { /* asked again on the next round */ }
    };
    start.addEventListener('click', async () => {
      start.disabled = true;
      $('status-detail').textContent = 'Starting the server…';
      try {
        await pageApi('power', 'POST', { action: 'on' });
        polling = setInterval(check, WATCH_MS);
        await check();
      } catch (e) {
        start.disabled = false;
        $('status-detail').textContent = `Start failed: ${e.message}`;
      }
    });
  }

  return {
    waitForStart,
    /** The console has the power right (and this page is its owner's). */
    enable(yes) {
      if (yes === enabled) return;
      enabled = yes;
      section.hidden = !yes;
      if (yes) refresh();
    },
    refresh,
  };
}
