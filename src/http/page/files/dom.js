// Building the page's elements (text always goes in as text, never as markup), lists kept
// across refreshes, the message lines, copy buttons and how times and durations read.

/**
 * `h('p', {class: 'x', onclick: f}, 'text', child)`: an element. Attributes set to
 * null/undefined/false are left out, `true` is an empty attribute, `on…` adds a listener.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

/** Appends `children` (nodes, strings, numbers; nested arrays and nulls allowed) to `el`. */
export function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces everything in `el` by `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * The elements of `container`, one per event (by `event_id`), kept across updates (so what has
 * the focus keeps it) and in the events' order. `create(event)` makes an entry `{ el,
 * update(event), remove?() }`; an entry whose event is gone leaves, unless `stay(entry)`.
 */
export class KeyedList {
  constructor(container, create, stay = () => false) {
    this.container = container;
    this.create = create;
    this.stay = stay;
    this.entries = new Map();
  }

  show(events) {
    const seen = new Set();
    events.forEach((e, i) => {
      seen.add(e.event_id);
      let entry = this.entries.get(e.event_id);
      if (!entry) {
        entry = this.create(e);
        this.entries.set(e.event_id, entry);
      }
      entry.update(e);
      // Moved only when out of place: moving an element takes the focus out of it.
      if (this.container.children[i] !== entry.el) {
        this.container.insertBefore(entry.el, this.container.children[i] || null);
      }
    });
    for (const [id, entry] of this.entries) {
      if (!seen.has(id) && !this.stay(entry)) {
        entry.el.remove();
        if (entry.remove) entry.remove();
        this.entries.delete(id);
      }
    }
  }
}

/** A labelled input: the label and the input, tied by `id`. */
export function field(id, label, attrs = {}) {
  const input = h(attrs.tag || 'input', { id, ...attrs, tag: null });
  return [h('label', { for: id }, label), input];
}

/** A message line inside a part of the page: `say(text)`, `fail(error)`, `clear()`. */
export function messageLine(cls = 'message') {
  const el = h('p', { class: cls, role: 'status', 'aria-live': 'polite' });
  return {
    el,
    say(text) {
      el.classList.remove('error');
      el.textContent = text;
    },
    fail(error) {
      el.classList.add('error');
      el.textContent = `Error: ${error && error.message ? error.message : String(error)}`;
    },
    clear() {
      el.classList.remove('error');
      el.textContent = '';
    },
  };
}

/** The page-wide lines: errors in `#alert` (announced at once), news in `#status`. */
export const notify = {
  error(error) {
    const el = document.getElementById('alert');
    el.textContent = `Error: ${error && error.message ? error.message : String(error)}`;
    el.hidden = false;
  },
  info(text) {
    document.getElementById('status').textContent = text;
  },
  clearError() {
    const el = document.getElementById('alert');
    el.textContent = '';
    el.hidden = true;
  },
};

/**
 * A button that copies `text()` to the clipboard and says so in `line`; where the clipboard is
 * refused, it selects `fallback` (an input) and says to copy by hand.
 */
export function copyButton(label, text, line, fallback) {
  return h('button', {
    type: 'button',
    class: 'copy',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text());
        line.say('Copied.');
      } catch {
        if (fallback) {
          fallback.focus();
          fallback.select();
        }
        line.fail('The browser refused the clipboard: the text is selected, copy it by hand.');
      }
    },
  }, label);
}

/** Unix seconds (or an RFC 3339 text) as local date and time. */
export function when(t) {
  if (t === null || t === undefined) return 'never';
  const date = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Seconds as `2 h 5 min`, `45 s`. */
export function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
}
