// What listeners see: what is on air now and what comes next, each with a play button, and the
// one player they share (an `<audio>` element playing the stream from Icecast). Until the
// first answer from jars the page says it is checking, never that nothing is live.

import { h, fill, when, KeyedList } from './dom.js';

/** `/<id><ext>`: the event's mount as the station streams it. */
export function mountOf(config, id) {
  return `/${id}${config.mount_extension}`;
}

/**
 * Where a listener plays event `id` (with `ticket` for a private event): every play button and
 * listener link takes its address from here. jars' `/listen` when the station has several
 * servers (it picks one); else Icecast's. Null when the station named neither.
 */
export function listenUrl(config, id, ticket) {
  const base = config.listen ? `${window.location.origin}/listen` : config.icecast_url;
  if (!base) return null;
  const url = `${base}${mountOf(config, id)}`;
  return ticket ? `${url}?token=${encodeURIComponent(ticket)}` : url;
}

/** The page's player: one `<audio>` element, the event it plays, and a line about it. */
export class Player {
  constructor(audio, line, bar) {
    this.audio = audio;
    this.line = line;
    this.bar = bar;
    this.playing = null;
    this.buttons = new Set();
    // A live stream that ends or breaks: the source left, or the connection was lost.
    for (const name of ['error', 'ended']) {
      audio.addEventListener(name, () => {
        if (!this.playing) return;
        this.stop();
        this.line.textContent = 'The show stopped playing: it ended, or the connection was lost.';
      });
    }
    audio.addEventListener('playing', () => {
      if (this.playing) this.line.textContent = `Playing ${this.playing.title}.`;
    });
    audio.addEventListener('waiting', () => {
      if (this.playing) this.line.textContent = `Loading ${this.playing.title}…`;
    });
  }

  /** A play button for `show` (`{ id, title, url }`): Play, and Stop while it plays. */
  button(show) {
    const b = h('button', {
      type: 'button',
      class: 'play primary',
      'data-event-id': show.id,
      disabled: !show.url,
      onclick: () => {
        if (this.playing && this.playing.id === show.id) {
          this.stop();
          this.line.textContent = `Stopped ${show.title}.`;
        } else {
          this.play(show);
        }
      },
    });
    b.show = show;
    this.buttons.add(b);
    this.labels();
    return b;
  }

  /** A button taken off the page. */
  forget(b) {
    this.buttons.delete(b);
  }

  /** Each button says what pressing it does. */
  labels() {
    for (const b of this.buttons) {
      const on = Boolean(this.playing && this.playing.id === b.show.id);
      b.textContent = on ? 'Stop' : 'Play';
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
      b.setAttribute('aria-label', `${on ? 'Stop' : 'Play'} ${b.show.title}`);
    }
  }

  play(show) {
    this.playing = show;
    this.labels();
    this.bar.hidden = false;
    this.line.textContent = `Loading ${show.title}…`;
    this.audio.src = show.url;
    this.audio.play().catch((err) => {
      if (this.playing !== show || err.name === 'AbortError') return;
      this.stop();
      this.line.textContent = `The browser did not play it (${err.message}).`;
    });
  }

  /** Stops playing (a live stream is not paused: it would fall behind). */
  stop() {
    this.playing = null;
    this.audio.pause();
    this.audio.removeAttribute('src');
    this.audio.load();
    this.labels();
  }

  /** Stops a show that left the air. */
  keep(liveIds) {
    if (this.playing && !this.playing.ticket && !liveIds.has(this.playing.id)) {
      this.stop();
      this.line.textContent = 'The show you were playing has ended.';
    }
  }
}

/** The "on air now" and "coming up" lists of public events. */
export class NowAndNext {
  constructor(config, player) {
    this.config = config;
    this.player = player;
    this.now = new KeyedList(document.getElementById('on-air-list'), (e) => this.item(e, true));
    this.next = new KeyedList(document.getElementById('next-list'), (e) => this.item(e, false));
    this.checking = document.getElementById('on-air-checking');
    this.empty = document.getElementById('on-air-empty');
    this.nextSection = document.getElementById('next');
  }

  /** Shows the public events of a successful refresh. */
  show(events) {
    const pub = events.filter((e) => !e.private);
    const live = pub.filter((e) => e.live);
    const coming = pub.filter((e) => !e.live).slice(0, 5);
    this.now.show(live);
    this.next.show(coming);
    this.checking.hidden = true;
    this.empty.hidden = live.length > 0;
    this.nextSection.hidden = coming.length === 0;
    this.player.keep(new Set(live.map((e) => e.event_id)));
    this.player.labels();
  }

  /** A refresh failed before any succeeded: say so instead of guessing. */
  unknown() {
    if (!this.checking.hidden) this.checking.textContent = 'Could not check what is on air: trying again…';
  }

  /** One show's item: title, state, stream title, description, and (live) its play button. */
  item(first, live) {
    const title = h('h3', {});
    const state = h('p', { class: live ? 'live-state on' : 'show-when' });
    const streamTitle = h('p', { class: 'stream-title' });
    const description = h('p', { class: 'description' });
    const url = listenUrl(this.config, first.event_id);
    const show = { id: first.event_id, title: first.title || '(untitled)', url };
    const button = live && url ? this.player.button(show) : null;
    const action = live && !url ? h('code', {}, mountOf(this.config, first.event_id)) : button;
    const el = h('li', { class: `show${live ? ' live' : ''}`, 'data-event-id': first.event_id },
      h('div', { class: 'show-text' }, title, state, streamTitle, description), action);
    return {
      el,
      remove: () => button && this.player.forget(button),
      update: (e) => {
        show.title = e.title || '(untitled)';
        title.textContent = show.title;
        const n = e.listeners === 1 ? '1 listener' : `${e.listeners} listeners`;
        state.textContent = live ? `On air · ${n}` : `Not on air yet · until ${when(e.expires_time)}`;
        streamTitle.textContent = e.stream_title ? `Now playing: ${e.stream_title}` : '';
        streamTitle.hidden = !e.stream_title;
        description.textContent = e.description || '';
        description.hidden = !e.description;
      },
    };
  }
}

/**
 * A listener link to the page (`#listen=<event>&token=<ticket>`): the player for that one
 * event, private ones included (the ticket lets Icecast admit the listener).
 */
export function privateListen(config, player, id, ticket) {
  const section = document.getElementById('listen');
  const show = { id, ticket, title: 'this show', url: listenUrl(config, id, ticket) };
  const button = player.button(show);
  fill(section,
    h('h2', {}, 'Your listener link'),
    h('p', {}, show.url
      ? 'Press play to listen. The link is yours: it stops working when the station ends the show or takes the link back.'
      : 'This station has not said where its streams are ([ui] icecast_url).'),
    h('p', { class: 'row' }, button));
  section.hidden = false;
}
