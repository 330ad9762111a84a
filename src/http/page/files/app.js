// The page's start: the public config, logging in and out, which sections show, and the
// refresh every few seconds that keeps live states and listener counts current.

import { api, session, onSessionOver } from './api.js';
import { notify } from './dom.js';
import { OnAirList, EventList } from './events.js';
import { Bans, revokeForm } from './admin.js';

const REFRESH_MS = 5000;
const PAGE = 100;

const $ = (id) => document.getElementById(id);

let config = { icecast_url: null, relay_url: null, mount_extension: '', listen: false };
let onAir;
let mine;
let all;
let bans;
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
    onAir.show(events.filter((e) => e.live && !e.private));
    if (session.token) {
      const me = (session.claims() || {}).sub;
      mine.show(events.filter((e) => e.created_by === me));
      if (isAdmin()) all.show(events);
      $('more-events').hidden = !more;
    }
    $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
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

async function start() {
  try {
    config = await api.config();
  } catch (err) {
    notify.error(err);
  }
  const ctx = (prefix) => ({ config, prefix, refresh });
  onAir = new OnAirList($('on-air-list'), $('on-air-empty'), config);
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
