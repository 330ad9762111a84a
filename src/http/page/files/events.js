// Members' and admins' events: a card per event with its live state and owner, going live
// (the studio in this browser, an encoder, or webcaster-relay), guest DJ links, listener links,
// live sessions (each listener droppable), stats, and ending or revoking. Every action is one
// API call; what is allowed is jars' answer.

import { api, session } from './api.js';
import { h, fill, field, messageLine, copyButton, notify, when, duration, KeyedList } from './dom.js';
import { listenersChart } from './chart.js';
import { mountOf, listenUrl } from './public.js';
import { Studio } from './studio.js';

/** The event's mount on the public Icecast, where an encoder streams to. */
function sourceUrl(config, id) {
  return config.icecast_url ? `${config.icecast_url}${mountOf(config, id)}` : null;
}

function liveText(e) {
  if (!e.live) return 'Not live';
  return `Live: ${e.listeners === 1 ? '1 listener' : `${e.listeners} listeners`}`;
}

/** How long links may last, for the lifetime choices. */
const LIFETIMES = [[1800, '30 minutes'], [3600, '1 hour'], [3 * 3600, '3 hours'], [12 * 3600, '12 hours'], [24 * 3600, '24 hours'], [7 * 86400, '7 days']];

function lifetimeSelect(id) {
  return h('select', { id, name: 'lifetime' },
    h('option', { value: '' }, 'station default'),
    LIFETIMES.map(([v, t]) => h('option', { value: v }, t)));
}

/** A link shown in a read-only box with a copy button (and an Open link when `open`). */
function linkBox(cls, label, link, line, open) {
  const box = h('input', { readonly: true, class: cls, value: link, 'aria-label': label });
  return h('p', { class: 'link-row' }, h('span', { class: 'link-label' }, `${label}: `), box,
    copyButton(`Copy ${label.toLowerCase()}`, () => link, line, box),
    open ? [' ', h('a', { href: link, class: `${cls}-open`, rel: 'noopener noreferrer', target: '_blank' }, 'Open')] : null);
}

/** The cards of a list of events, kept across refreshes so open parts and forms stay. */
export class EventList {
  constructor(container, empty, ctx) {
    this.empty = empty;
    // A card whose studio was used stays, so its DJ sees why the show ended.
    this.cards = new KeyedList(container, (e) => new EventCard(e, ctx), (card) => card.studioUsed());
  }

  show(events) {
    this.cards.show(events);
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
      this.goLive(), this.guestLink(), this.listenerLink(), this.sessions(), this.stats(), this.actions(),
      this.message.el);
  }

  update(e) {
    this.event = e;
    this.title.textContent = e.title || '(untitled)';
    this.state.textContent = liveText(e);
    this.state.classList.toggle('on', Boolean(e.live));
    this.description.textContent = e.description || '';
    this.description.hidden = !e.description;
    const owner = e.owner_name || `member ${e.created_by}`;
    this.meta.textContent = `${e.private ? 'Private' : 'Public'} · by ${owner} · created ${when(e.created_time)} · ends ${when(e.expires_time)} · id ${e.event_id}`;
  }

  /** Going live: from this browser (the studio), with an encoder, or through webcaster-relay. */
  goLive() {
    const { config } = this.ctx;
    const mount = mountOf(config, this.id);
    this.studio = config.webcast
      ? new Studio({ id: this.id, mount, password: () => session.token, prefix: this.base, onChange: () => this.ctx.refresh() })
      : null;
    return h('details', { class: 'go-live' }, h('summary', {}, 'Go live'),
      h('h4', {}, 'From this browser'),
      this.studio ? this.studio.el : h('p', { class: 'quiet' }, 'This station does not take broadcasts from the page ([webcast] is not set): use an encoder.'),
      this.encoder(mount));
  }

  /** Whether this card's studio went live (or tried): then it is not taken off the page. */
  studioUsed() {
    return Boolean(this.studio && this.studio.state !== 'off');
  }

  /** Where and how an encoder streams: Icecast directly, or through webcaster-relay. */
  encoder(mount) {
    const { config } = this.ctx;
    const url = sourceUrl(config, this.id);
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
      h('h5', {}, 'Through webcaster-relay'),
      relayUrl
        ? h('p', {}, 'Relay address ', relayBox, copyButton('Copy relay address', () => relayUrl, line, relayBox))
        : h('p', {}, 'Relay address: not configured here ([ui] relay_url).'),
      h('p', {}, 'Use your login token as the relay\'s password: the relay asks jars (/jars/connect) to approve you when you start. ',
        'The button asks the same now, to check you may go live.'),
      approve);
    return h('details', { class: 'encoder' }, h('summary', {}, 'With an encoder or webcaster-relay'), direct, relay, line.el);
  }

  /** A guest DJ link: a source ticket for this event only, opening the studio for it. */
  guestLink() {
    const b = `${this.base}-guest`;
    const line = messageLine();
    const out = h('div', { class: 'guest-out' });
    const lifetime = lifetimeSelect(`${b}-lifetime`);
    const form = h('form', {
      class: 'stack',
      onsubmit: async (ev) => {
        ev.preventDefault();
        line.clear();
        const fields = { mount: this.id, kind: 'source' };
        if (lifetime.value) fields.lifetime = lifetime.value;
        try {
          const { body } = await api.post('/jars/ticket', fields);
          const link = `${location.origin}/#studio=${this.id}&ticket=${encodeURIComponent(body.ticket)}`;
          const revoke = h('button', {
            type: 'button',
            class: 'revoke-guest danger',
            onclick: () => this.revoke({ ticket: body.ticket }, line),
          }, 'Revoke this guest link');
          fill(out,
            h('p', {}, `Valid until ${when(body.expires)}. Whoever has it may broadcast on this event (and no other) until then, or until you revoke it.`),
            linkBox('guest-url', 'Guest link', link, line, false), revoke);
          line.say('Guest link made.');
        } catch (err) {
          line.fail(err);
        }
      },
    },
    h('label', { for: `${b}-lifetime` }, 'Valid for'), lifetime,
    h('button', { type: 'submit', class: 'make-guest-link' }, 'Make guest DJ link'));
    return h('details', { class: 'guest-link' }, h('summary', {}, 'Guest DJ link'),
      h('p', {}, 'A link that opens the studio of this event for a guest, with no account.'), form, out, line.el);
  }

  /** Minting a listener link: lifetime, optional address and listener cap. */
  listenerLink() {
    const b = this.base;
    const line = messageLine();
    const out = h('div', { class: 'link-out' });
    const lifetime = lifetimeSelect(`${b}-lifetime`);
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
          const { config } = this.ctx;
          const stream = listenUrl(config, this.id, body.ticket) || `${mountOf(config, this.id)}?token=${encodeURIComponent(body.ticket)}`;
          const page = `${location.origin}/#listen=${this.id}&token=${encodeURIComponent(body.ticket)}`;
          fill(out,
            h('p', {}, `Links valid until ${when(body.expires)}:`),
            linkBox('link-page', 'Page link', page, line, false),
            linkBox('link-url', 'Stream URL', stream, line, Boolean(config.icecast_url)));
          line.say('Listener link made.');
        } catch (err) {
          line.fail(err);
        }
      },
    },
    h('label', { for: `${b}-lifetime` }, 'Valid for'), lifetime, ipLabel, ip, capLabel, cap,
    h('button', { type: 'submit', class: 'make-link' }, 'Make listener link'));
    return h('details', { class: 'listener-link' }, h('summary', {}, 'Listener link'),
      h('p', {}, 'The page link plays the show on this station\'s page; the stream URL is for players such as VLC.'),
      form, out, line.el);
  }

  /** A member's name as jars gave it (event owners), else their id. */
  who(id) {
    if (id === null || id === undefined) return null;
    return this.ctx.nameOf(id) || `member ${id}`;
  }

  /**
   * The source and listeners on this jars' Icecast now: each listener may be dropped (nothing
   * revoked) and its link revoked; a guest's source link revoked.
   */
  sessions() {
    return loadedOnOpen('sessions', 'Live sessions', async (out, line, reload) => {
      const { body } = await api.get(`/jars/events/${this.id}/sessions`);
      const s = body.source;
      const source = s
        ? h('p', { class: 'source-line' }, `Source on ${s.mount} (${s.server}:${s.port}) since ${when(s.since)}`,
          s.ticket ? `, a guest DJ (link made by ${this.who(s.member) || 'unknown'})` : (s.member !== null && s.member !== undefined ? `, ${this.who(s.member)}` : ''),
          s.relay ? `, through relay "${s.relay}"` : '', ' ',
          s.ticket
            ? h('button', { type: 'button', class: 'revoke-source danger', onclick: () => this.revoke({ jti: s.ticket, mount: this.id }, line, reload) }, 'Revoke guest link')
            : null)
        : h('p', { class: 'source-line' }, 'No source connected.');
      const rows = (body.listeners || []).map((l) => h('tr', { 'data-client': l.client },
        h('td', {}, l.ip), h('td', {}, when(l.started)), h('td', {}, l.mount),
        h('td', {}, `${l.server}:${l.port} #${l.client}`),
        h('td', {}, this.who(l.member) || (l.ticket ? 'listener link' : 'public')),
        h('td', { class: 'row' },
          h('button', { type: 'button', class: 'drop', onclick: () => this.drop(l, line, reload) }, 'Drop'),
          l.ticket
            ? h('button', { type: 'button', class: 'revoke-jti', onclick: () => this.revoke({ jti: l.ticket, mount: this.id }, line, reload) }, 'Revoke link')
            : null)));
      fill(out, source, rows.length
        ? h('table', {},
          h('caption', {}, `${rows.length} listening on this jars' Icecast`),
          h('thead', {}, h('tr', {}, ['Address', 'Since', 'Mount', 'Where', 'Who', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, rows))
        : h('p', {}, 'Nobody is listening.'));
    });
  }

  /** Drops one listener from Icecast, revoking nothing (they may come back). */
  async drop(l, line, then) {
    try {
      await api.post(`/jars/events/${this.id}/sessions/drop`, { server: l.server, port: l.port, client: l.client });
      if (then) await then();
      line.say('Dropped that listener (nothing revoked: their link still works).');
    } catch (err) {
      line.fail(err);
    }
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
