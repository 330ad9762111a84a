// The page's start: the public config and the station's name, which view a link opens (the
// public page, a guest's studio `#studio=<event>&ticket=…`, a listener's link
// `#listen=<event>&token=…`), logging in and out, which sections show, and the refresh every
// few seconds that keeps live states and listener counts current.

import { api, session, onSessionOver, claimsOf } from './api.js';
import { notify, when } from './dom.js';
import { EventList } from './events.js';
import { Bans, revokeForm } from './admin.js';
import { NowAndNext, Player, privateListen, mountOf } from './public.js';
import { Studio } from './studio.js';

const REFRESH_MS = 5000;
const PAGE = 100;
/** Where a guest's ticket is kept while their tab is open (out of the address bar). */
const GUEST = 'jars.guest';

const $ = (id) => document.getElementById(id);

let config = { icecast_url: null, relay_url: null, mount_extension: '', webcast: false, listen: false };
let nowAndNext;
let mine;
let all;
let bans;
/** Member ids and the names jars gave for them (as event owners). */
const names = new Map();
/** How many pages of events the admin list follows. */
let pages = 1;
let refreshing = false;

function isAdmin() {
  const c = session.claims();
  return Boolean(c && c.access_level === 'ADMIN_USER');
}

/** Shows the sections for who is logged in (jars answers what each may do). */
function showSections() {
  const token = session.token;
  $('login').hidden = Boolean(token);
  $('member').hidden = !token;
  $('admin').hidden = !(token && isAdmin());
  $('whoami').hidden = !token;
  $('who').textContent = session.user;
  $('who-admin').hidden = !isAdmin();
  if (!token) {
    mine.show([]);
    all.show([]);
  }
}

/** Up to `pages` pages of `/jars/events`, newest first; whether more follow. */
async function listEvents() {
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (isAdmin() && $('admin-expired').checked) params.set('all', '1');
  const events = [];
  let more = false;
  for (let i = 0; i < pages; i += 1) {
    const { body, headers } = await api.get(`/jars/events?${params}`);
    events.push(...body);
    const next = headers.get('X-Next-Cursor');
    more = Boolean(next);
    if (!next) break;
    params.set('after', next);
  }
  return { events, more };
}

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const { events, more } = await listEvents();
    const now = Date.now() / 1000;
    nowAndNext.show(events.filter((e) => e.expires_time > now));
    for (const e of events) {
      if (e.owner_name) names.set(e.created_by, e.owner_name);
    }
    if (session.token) {
      const me = (session.claims() || {}).sub;
      mine.show(events.filter((e) => e.created_by === me));
      if (isAdmin()) all.show(events);
      $('more-events').hidden = !more;
    }
    $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    nowAndNext.unknown();
    if (err.status !== 401) notify.error(err);
  } finally {
    refreshing = false;
  }
}

function sessionOver(err) {
  notify.error(err);
  showSections();
  $('login-user').focus();
}

async function login(ev) {
  ev.preventDefault();
  notify.clearError();
  const user = $('login-user').value.trim();
  const password = $('login-password').value;
  try {
    const token = await api.login(user, password);
    session.start(token, user);
    $('login-form').reset();
    notify.info(`Logged in as ${user}.`);
    showSections();
    await refresh();
    if (isAdmin()) await bans.load();
    $('member-title').focus();
  } catch (err) {
    notify.error(err);
    $('login-password').focus();
  }
}

function logout() {
  session.end();
  notify.clearError();
  notify.info('Logged out.');
  showSections();
  $('login-user').focus();
}

async function create(ev) {
  ev.preventDefault();
  notify.clearError();
  const form = $('create-form');
  try {
    const { body } = await api.post('/jars/create', {
      title: form.elements.title.value,
      description: form.elements.description.value,
      private: form.elements.private.checked ? 'true' : 'false',
    });
    form.reset();
    $('create').open = false;
    notify.info(`Event created (${body.event_id}).`);
    await refresh();
  } catch (err) {
    notify.error(err);
  }
}

/** The station's name, line and logo from `[ui]`. */
function presentStation() {
  if (config.station_name) {
    $('station-name').textContent = config.station_name;
    document.title = config.station_name;
  }
  if (config.station_description) {
    $('station-description').textContent = config.station_description;
    $('station-description').hidden = false;
  }
  if (config.logo) {
    $('station-logo').src = config.logo;
    $('station-logo').hidden = false;
  }
}

/** The link's fragment: `#studio=…&ticket=…` or `#listen=…&token=…`, else empty. */
function linkParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ''));
}

/**
 * A guest's studio for the event of their link, and nothing else of the station. The ticket
 * leaves the address bar (kept for this tab); jars decides whether it opens that event.
 */
async function guestStudio(id, linkTicket) {
  let ticket = linkTicket;
  if (ticket) {
    sessionStorage.setItem(GUEST, JSON.stringify({ id, ticket }));
    history.replaceState(null, '', `#studio=${encodeURIComponent(id)}`);
  } else {
    const kept = JSON.parse(sessionStorage.getItem(GUEST) || 'null');
    ticket = kept && kept.id === id ? kept.ticket : null;
  }
  for (const part of ['on-air', 'next', 'login', 'member', 'admin', 'updated']) $(part).hidden = true;
  $('guest').hidden = false;
  if (!ticket) {
    $('guest-event').textContent = 'This guest link is incomplete: ask the presenter for the whole link again.';
    return;
  }
  const exp = (claimsOf(ticket) || {}).exp;
  const until = exp ? ` Your link works until ${when(exp)}.` : '';
  $('guest-event').textContent = `You are the guest DJ of this event.${until}`;
  try {
    const { body } = await api.getPublic(`/jars/events/${encodeURIComponent(id)}`);
    $('guest-title').textContent = `Guest studio: ${body.title || '(untitled)'}`;
  } catch {
    // A private event is not shown to visitors; the studio works all the same.
  }
  const studio = new Studio({ id, mount: mountOf(config, id), password: () => ticket, prefix: 'guest' });
  $('guest-studio').append(studio.el);
  if (!config.webcast) notify.error('This station does not take broadcasts from the page ([webcast] is not set).');
}

async function start() {
  try {
    config = await api.config();
  } catch (err) {
    notify.error(err);
  }
  presentStation();
  const player = new Player($('player'), $('player-line'), $('player-bar'));
  const link = linkParams();
  if (link.get('studio')) {
    await guestStudio(link.get('studio'), link.get('ticket'));
    return;
  }
  if (link.get('listen')) privateListen(config, player, link.get('listen'), link.get('token'));
  const ctx = (prefix) => ({ config, prefix, refresh, nameOf: (id) => names.get(id) });
  nowAndNext = new NowAndNext(config, player);
  mine = new EventList($('my-events'), $('my-events-empty'), ctx('mine'));
  all = new EventList($('all-events'), $('all-events-empty'), ctx('all'));
  bans = new Bans();
  revokeForm();
  onSessionOver(sessionOver);
  $('member-title').tabIndex = -1;
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('create-form').addEventListener('submit', create);
  $('refresh').addEventListener('click', refresh);
  $('admin-expired').addEventListener('change', refresh);
  $('more-events').addEventListener('click', () => {
    pages += 1;
    refresh();
  });
  showSections();
  await refresh();
  if (session.token && isAdmin()) await bans.load();
  setInterval(() => {
    if (!document.hidden) refresh();
  }, REFRESH_MS);
}

// Nothing fails silently: a script error or a refused resource is said on the page too.
window.addEventListener('error', (ev) => notify.error(`The page failed: ${ev.message}`));
window.addEventListener('unhandledrejection', (ev) => notify.error(ev.reason));
document.addEventListener('securitypolicyviolation', (ev) => {
  notify.error(`The browser refused ${ev.blockedURI || 'inline content'} (${ev.violatedDirective}).`);
});

start();
