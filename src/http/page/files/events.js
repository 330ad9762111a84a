// Events as the page shows them: the public "on air" list, and a card per event with its live
// state, the go-live details, listener links, live sessions, stats, and ending or revoking.
// Every action is one API call; what is allowed is jars' answer.

import { api, session } from './api.js';
import { h, fill, field, messageLine, copyButton, notify, when, duration } from './dom.js';
import { listenersChart } from './chart.js';

/** `/<id><ext>`: the event's mount as the station streams it. */
export function mountOf(config, id) {
  return `/${id}${config.mount_extension}`;
}

/**
 * The event's stream: jars' `/listen`, which picks a server, when servers are configured for
 * it; else the public Icecast, when `[ui] icecast_url` is set.
 */
function streamUrl(config, id) {
  if (config.listen) return `${window.location.origin}/listen/${id}${config.mount_extension}`;
  return config.icecast_url ? `${config.icecast_url}${mountOf(config, id)}` : null;
}

function liveText(e) {
  if (!e.live) return 'Not live';
  const n = e.listeners === 1 ? '1 listener' : `${e.listeners} listeners`;
  return `Live: ${n} (peak ${e.peak_listeners})`;
}

/** The public events that are live now, each with a listen link. */
export class OnAirList {
  constructor(list, empty, config) {
    this.list = list;
    this.empty = empty;
    this.config = config;
  }

  show(events) {
    fill(this.list, events.map((e) => {
      const url = streamUrl(this.config, e.event_id);
      return h('li', { 'data-event-id': e.event_id },
        h('strong', {}, e.title || '(untitled)'), ' ',
        h('span', { class: 'live-state' }, liveText(e)), ' ',
        url
          ? h('a', { class: 'listen', href: url, rel: 'noopener noreferrer' }, 'Listen')
          : h('code', {}, mountOf(this.config, e.event_id)));
    }));
    this.empty.hidden = events.length > 0;
  }
}

/** The cards of a list of events, kept across refreshes so open parts and forms stay. */
export class EventList {
  constructor(container, empty, ctx) {
    this.container = container;
    this.empty = empty;
    this.ctx = ctx;
    this.cards = new Map();
  }

  show(events) {
    const seen = new Set();
    events.forEach((e, i) => {
      seen.add(e.event_id);
      let card = this.cards.get(e.event_id);
      if (!card) {
        card = new EventCard(e, this.ctx);
        this.cards.set(e.event_id, card);
      }
      card.update(e);
      // Moved only when out of place: moving a card would take the focus out of it.
      if (this.container.children[i] !== card.el) {
        this.container.insertBefore(card.el, this.container.children[i] || null);
      }
    });
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.el.remove();
        this.cards.delete(id);
      }
    }
    this.empty.hidden = events.length > 0;
  }
}

/**
 * A `<details>` part whose content `load(out, line, reload)` fills each time it is opened or
 * its reload button is pressed; a refusal is said in its message line.
 */
function loadedOnOpen(cls, summary, load) {
  const line = messageLine();
  const out = h('div', { class: `${cls}-out table-wrap` });
  const reload = async () => {
    line.clear();
    try {
      await load(out, line, reload);
    } catch (err) {
      line.fail(err);
    }
  };
  const details = h('details', { class: cls }, h('summary', {}, summary),
    h('button', { type: 'button', class: 'reload', onclick: reload }, `Reload ${summary.toLowerCase()}`), out, line.el);
  details.addEventListener('toggle', () => details.open && reload());
  return details;
}

class EventCard {
  constructor(e, ctx) {
    this.id = e.event_id;
    this.ctx = ctx;
    this.base = `${ctx.prefix}-${this.id}`;
    this.title = h('h3', { id: `${this.base}-title` });
    this.state = h('p', { class: 'live-state' });
    this.description = h('p', { class: 'description' });
    this.meta = h('p', { class: 'meta' });
    this.message = messageLine('message card-message');
    this.el = h('article', { class: 'event', 'data-event-id': this.id, 'aria-labelledby': `${this.base}-title` },
      this.title, this.state, this.description, this.meta,
      this.goLive(), this.listenerLink(), this.sessions(), this.stats(), this.actions(),
      this.message.el);
  }

  update(e) {
    this.event = e;
    this.title.textContent = e.title || '(untitled)';
    this.state.textContent = liveText(e);
    this.state.classList.toggle('on', Boolean(e.live));
    this.description.textContent = e.description || '';
    this.description.hidden = !e.description;
    this.meta.textContent = `${e.private ? 'Private' : 'Public'} · created ${when(e.created_time)} · ends ${when(e.expires_time)} · id ${e.event_id}`;
  }

  /** Where and how to stream: Icecast directly, or through webcaster-relay. */
  goLive() {
    const { config } = this.ctx;
    const mount = mountOf(config, this.id);
    const url = streamUrl(config, this.id);
    const line = messageLine();
    const exp = (session.claims() || {}).exp;
    const urlBox = url && h('input', { readonly: true, class: 'source-url', value: url, 'aria-label': 'Source URL' });
    const passwordBox = h('input', { type: 'password', readonly: true, class: 'source-password', value: session.token || '', 'aria-label': 'Source password (your login token)' });
    const direct = h('dl', {},
      h('dt', {}, 'Icecast server'),
      h('dd', {}, config.icecast_url ? h('code', {}, config.icecast_url) : 'not configured here ([ui] icecast_url): ask the station'),
      h('dt', {}, 'Mount'), h('dd', {}, h('code', { class: 'mount' }, mount)),
      url && [h('dt', {}, 'Source URL'), h('dd', {}, urlBox, copyButton('Copy URL', () => url, line, urlBox))],
      h('dt', {}, 'User name'), h('dd', {}, h('code', {}, 'source'), ' (any name works)'),
      h('dt', {}, 'Password'),
      h('dd', {}, 'your login token', exp ? ` (valid until ${when(exp)}; log in again for a new one)` : '', ' ',
        passwordBox, copyButton('Copy password', () => session.token, line, passwordBox)));
    const relayUrl = config.relay_url ? `${config.relay_url}${mount}` : null;
    const relayBox = relayUrl && h('input', { readonly: true, class: 'relay-url', value: relayUrl, 'aria-label': 'webcaster-relay address' });
    const approve = h('button', {
      type: 'button',
      class: 'approve',
      onclick: async () => {
        approve.disabled = true;
        try {
          await api.post('/jars/connect', { mount: this.id });
          line.say('Approved: jars marked this event as connected by you; webcaster-relay may start streaming now.');
        } catch (err) {
          line.fail(err);
        } finally {
          approve.disabled = false;
        }
      },
    }, 'Approve webcaster-relay now');
    const relay = h('div', {},
      h('h4', {}, 'Through webcaster-relay'),
      relayUrl
        ? h('p', {}, 'Relay address ', relayBox, copyButton('Copy relay address', () => relayUrl, line, relayBox))
        : h('p', {}, 'Relay address: not configured here ([ui] relay_url).'),
      h('p', {}, 'Use your login token as the relay\'s password: the relay asks jars (/jars/connect) to approve you when you start. ',
        'The button asks the same now, to check you may go live.'),
      approve);
    return h('details', { class: 'go-live' }, h('summary', {}, 'Go live'), direct, relay, line.el);
  }

  /** Minting a listener link: lifetime, optional address and listener cap. */
  listenerLink() {
    const b = this.base;
    const line = messageLine();
    const out = h('div', { class: 'link-out' });
    const lifetime = h('select', { id: `${b}-lifetime`, name: 'lifetime' },
      h('option', { value: '' }, 'station default'),
      [[1800, '30 minutes'], [3600, '1 hour'], [3 * 3600, '3 hours'], [12 * 3600, '12 hours'], [24 * 3600, '24 hours'], [7 * 86400, '7 days']]
        .map(([v, t]) => h('option', { value: v }, t)));
    const [ipLabel, ip] = field(`${b}-ip`, 'Only for this address (optional)', { name: 'ip', autocomplete: 'off', spellcheck: 'false', class: 'link-ip' });
    const [capLabel, cap] = field(`${b}-cap`, 'At most this many listeners at once (optional)', { name: 'max_listeners', type: 'number', min: 1, step: 1, inputmode: 'numeric', class: 'link-cap' });
    const form = h('form', {
      class: 'stack',
      onsubmit: async (ev) => {
        ev.preventDefault();
        line.clear();
        const fields = { mount: this.id };
        if (lifetime.value) fields.lifetime = lifetime.value;
        if (ip.value.trim()) fields.ip = ip.value.trim();
        if (cap.value.trim()) fields.max_listeners = cap.value.trim();
        try {
          const { body } = await api.post('/jars/ticket', fields);
          const link = `${streamUrl(this.ctx.config, this.id) || mountOf(this.ctx.config, this.id)}?token=${encodeURIComponent(body.ticket)}`;
          const box = h('input', { readonly: true, class: 'link-url', value: link, 'aria-label': 'Listener link' });
          fill(out,
            h('p', {}, `Link valid until ${when(body.expires)}:`),
            box, copyButton('Copy link', () => link, line, box),
            streamUrl(this.ctx.config, this.id) ? [' ', h('a', { href: link, class: 'open-link', rel: 'noopener noreferrer', target: '_blank' }, 'Open')] : null);
          line.say('Listener link made.');
        } catch (err) {
          line.fail(err);
        }
      },
    },
    h('label', { for: `${b}-lifetime` }, 'Valid for'), lifetime, ipLabel, ip, capLabel, cap,
    h('button', { type: 'submit', class: 'make-link' }, 'Make listener link'));
    return h('details', { class: 'listener-link' }, h('summary', {}, 'Listener link'), form, out, line.el);
  }

  /** The source and listeners on this jars' Icecast now, each ticket revocable. */
  sessions() {
    return loadedOnOpen('sessions', 'Live sessions', async (out, line, reload) => {
      const { body } = await api.get(`/jars/events/${this.id}/sessions`);
      const s = body.source;
      const source = s
        ? h('p', {}, `Source on ${s.mount} (${s.server}:${s.port}) since ${when(s.since)}`,
          s.member !== null && s.member !== undefined ? `, member ${s.member}` : '',
          s.relay ? `, through relay ${s.relay}` : '')
        : h('p', {}, 'No source connected.');
      const rows = (body.listeners || []).map((l) => h('tr', {},
        h('td', {}, l.ip), h('td', {}, when(l.started)), h('td', {}, l.mount),
        h('td', {}, `${l.server}:${l.port} #${l.client}`),
        h('td', {}, l.member !== null && l.member !== undefined ? String(l.member) : (l.ticket ? 'link' : 'public')),
        h('td', {}, l.ticket
          ? h('button', { type: 'button', class: 'revoke-jti', onclick: () => this.revoke({ jti: l.ticket, mount: this.id }, line, reload) }, 'Revoke link')
          : '')));
      fill(out, source, rows.length
        ? h('table', {},
          h('caption', {}, `${rows.length} listening on this jars' Icecast`),
          h('thead', {}, h('tr', {}, ['Address', 'Since', 'Mount', 'Where', 'Who', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, rows))
        : h('p', {}, 'Nobody is listening.'));
    });
  }

  /** The listening stats and the listeners-over-time chart. */
  stats() {
    return loadedOnOpen('stats', 'Listening stats', async (out) => {
      const { body: s } = await api.get(`/jars/events/${this.id}/stats`);
      fill(out,
        h('dl', { class: 'figures' },
          h('dt', {}, 'Sessions'), h('dd', { class: 'stat-sessions' }, s.sessions),
          h('dt', {}, 'Unique listeners'), h('dd', { class: 'stat-unique' }, s.unique_listeners),
          h('dt', {}, 'Peak listeners'), h('dd', { class: 'stat-peak' }, s.peak_listeners),
          h('dt', {}, 'Listening hours'), h('dd', {}, Number(s.listening_hours).toFixed(2)),
          h('dt', {}, 'Mean session'), h('dd', {}, duration(s.mean_session_seconds)),
          h('dt', {}, 'First listener'), h('dd', {}, when(s.first_start)),
          h('dt', {}, 'Last listener left'), h('dd', {}, when(s.last_end))),
        listenersChart(s.series || []));
    });
  }

  async revoke(fields, line, then) {
    try {
      const { body } = await api.post('/jars/tickets/revoke', fields);
      // Reloaded first: a reload clears the message line.
      if (then) await then();
      if (fields.mount && !fields.jti) {
        // jars keeps no list of minted links: it counts those in use on its Icecast.
        line.say(`Revoked every listener link of this event (${body.revoked} in use here).`);
      } else {
        line.say(body.revoked === 1 ? 'Revoked the link.' : 'That link was revoked already.');
      }
    } catch (err) {
      line.fail(err);
    }
  }

  /** Revoking every link of the event, and ending it (after a second, explicit click). */
  actions() {
    const line = this.message;
    const confirm = h('span', { class: 'confirm', hidden: true },
      'End this event now? Its source and listeners are cut off. ',
      h('button', {
        type: 'button',
        class: 'end-confirm danger',
        onclick: async () => {
          confirm.hidden = true;
          try {
            const { body } = await api.post(`/jars/events/${this.id}/end`);
            this.update(body);
            // Said page-wide: the next refresh takes the ended event out of the lists.
            notify.info(`"${body.title || '(untitled)'}" ended at ${when(body.expires_time)}.`);
            this.ctx.refresh();
          } catch (err) {
            line.fail(err);
          }
        },
      }, 'End now'), ' ',
      h('button', { type: 'button', onclick: () => { confirm.hidden = true; } }, 'Cancel'));
    return h('p', { class: 'row actions' },
      h('button', {
        type: 'button',
        class: 'revoke-all',
        onclick: () => this.revoke({ mount: this.id }, line),
      }, 'Revoke all listener links'), ' ',
      h('button', { type: 'button', class: 'end-event danger', onclick: () => { confirm.hidden = false; } }, 'End event…'),
      ' ', confirm);
  }
}
