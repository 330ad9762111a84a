// The admins' tools beside the event cards: the ban list (add, remove) and revoking one
// listener link by its link, ticket or ticket id.

import { api } from './api.js';
import { h, fill, messageLine, when } from './dom.js';

/** The bans table under `#bans`, the form `#ban-form` and the reload button. */
export class Bans {
  constructor() {
    this.out = document.getElementById('bans');
    this.line = messageLine();
    this.out.after(this.line.el);
    this.form = document.getElementById('ban-form');
    this.form.addEventListener('submit', (ev) => this.add(ev));
    document.getElementById('bans-reload').addEventListener('click', () => this.load());
  }

  async load() {
    try {
      const { body } = await api.get('/jars/bans');
      this.render(body || []);
    } catch (err) {
      this.line.fail(err);
    }
  }

  render(bans) {
    if (!bans.length) {
      fill(this.out, h('p', { class: 'quiet' }, 'No bans.'));
      return;
    }
    const rows = bans.map((b) => h('tr', { 'data-ban-id': b.id },
      h('td', {}, b.ip || ''),
      h('td', {}, b.member_name || (b.member !== null && b.member !== undefined ? `#${b.member}` : '')),
      h('td', {}, b.event || 'every event'),
      h('td', {}, b.expires ? when(b.expires) : 'until removed'),
      h('td', {}, b.reason || ''),
      h('td', {}, h('button', { type: 'button', class: 'unban', onclick: () => this.remove(b.id) }, 'Remove'))));
    fill(this.out, h('table', {},
      h('caption', {}, `${bans.length} ban${bans.length === 1 ? '' : 's'}`),
      h('thead', {}, h('tr', {}, ['Address', 'Member', 'Event', 'Until', 'Reason', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)));
  }

  async add(ev) {
    ev.preventDefault();
    this.line.clear();
    const fields = {};
    for (const name of ['ip', 'member', 'event', 'for', 'reason']) {
      const v = this.form.elements[name].value.trim();
      if (v) fields[name] = v;
    }
    try {
      const { body } = await api.post('/jars/bans', fields);
      this.form.reset();
      this.line.say(`Ban ${body.id} added.`);
      await this.load();
    } catch (err) {
      this.line.fail(err);
    }
  }

  async remove(id) {
    try {
      await api.del(`/jars/bans/${encodeURIComponent(id)}`);
      this.line.say(`Ban ${id} removed.`);
      await this.load();
    } catch (err) {
      this.line.fail(err);
    }
  }
}

/** What the revoke form was given: a link (`…?token=…`), a ticket (a JWT) or a ticket id. */
function revocationOf(text) {
  const token = text.includes('?') ? new URLSearchParams(text.split('?')[1]).get('token') : null;
  const ticket = token || text;
  return ticket.split('.').length === 3 ? { ticket } : { jti: ticket };
}

/** The form `#revoke-form`: revokes one listener link. */
export function revokeForm() {
  const form = document.getElementById('revoke-form');
  const line = messageLine();
  form.after(line.el);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    line.clear();
    try {
      const { body } = await api.post('/jars/tickets/revoke', revocationOf(form.elements.ticket.value.trim()));
      line.say(body.revoked === 1 ? 'Revoked the link.' : 'That link was revoked already.');
      form.reset();
    } catch (err) {
      line.fail(err);
    }
  });
}
