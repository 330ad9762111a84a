// The studio: going live from this browser. The sound (audio.js) is encoded here and sent
// through jars' webcast socket (`/webcast/<mount>`, the webcast protocol: a `hello` with the
// password, then audio, `metadata` for the title); jars answers `status` frames (whether
// Icecast has the show, how many listen) and, when it ends the show, closes the socket with a
// code and a reason said here in words. A member's password is their login, a guest's the
// ticket of their link: jars decides who may go live on which event.

import { h, messageLine } from './dom.js';
import { AudioDesk, recordingType } from './audio.js';

/** Why jars ended a show (its close reasons), as sentences. */
const WHY = {
  bad_hello: 'jars did not understand how this page started the broadcast.',
  invalid_token: 'Your login or guest link is not valid here.',
  expired: 'Your login or guest link has expired.',
  wrong_token_kind: 'That is not a login or a guest DJ link.',
  user_removed: 'Your account no longer exists.',
  not_owner: "Only the event's owner or an admin may broadcast on it.",
  wrong_event: 'This guest link is for another event.',
  revoked: 'The guest link was revoked: the station took back the permission to broadcast.',
  banned: 'You are banned from broadcasting here.',
  no_event: 'That event does not exist.',
  event_ended: 'The event has ended.',
  mount_in_use: 'Somebody else is live on this event.',
  replaced: 'You went live on this event from another window or device.',
  too_large: 'The browser sent more audio at once than jars takes.',
  bad_stream: 'jars could not read the audio this browser encodes.',
  icecast_refused: "Icecast refused jars' source login: tell the station's operator.",
};
/** Reasons worth trying again after: jars could not check the DJ, or heard nothing. */
const RETRY = new Set(['timeout', 'unavailable']);
const BACKOFF_MS = [1000, 2000, 4000, 8000, 10000];

/** What a close of the socket means: `{ retry }`, or `{ why }` when the show is over. */
export function closeMeaning(code, reason) {
  if (code >= 4000 && code < 5000 && !RETRY.has(reason)) {
    return { why: WHY[reason] || `jars ended the broadcast (${reason || code}).` };
  }
  return { retry: true };
}

/** `ws://` or `wss://` to this origin's `/webcast` for `mount` (`/<event id><ext>`). */
function webcastUrl(mount) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/webcast${mount}`;
}

const STATES = {
  off: 'Off air',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  ended: 'Ended',
};

/**
 * A studio for one event: `{ id, mount, password: () => string, prefix, onChange }`
 * (`onChange()` runs when the show goes live or ends). Its element is `studio.el`; nothing is
 * asked of the browser (microphone, sound) until a button is pressed.
 */
export class Studio {
  constructor({ id, mount, password, prefix, onChange }) {
    this.id = id;
    this.mount = mount;
    this.password = password;
    this.onChange = onChange || (() => {});
    this.type = recordingType();
    this.desk = null;
    this.ws = null;
    this.recording = null;
    this.attempt = 0;
    this.wanted = false;
    this.title = '';
    const b = `${prefix}-studio`;
    this.stateLine = h('p', { class: 'studio-state', role: 'status', 'aria-live': 'polite' });
    this.listeners = h('p', { class: 'studio-listeners' });
    this.why = messageLine('message studio-why');
    this.mic = h('select', { id: `${b}-mic`, class: 'studio-mic' },
      h('option', { value: '' }, 'Default microphone'),
      h('option', { value: 'none' }, 'No microphone (the file only)'));
    this.mic.addEventListener('change', () => this.changeMicrophone());
    this.filePlayer = h('audio', { class: 'studio-file-player', controls: true, hidden: true });
    this.file = h('input', { id: `${b}-file`, class: 'studio-file', type: 'file', accept: 'audio/*' });
    this.file.addEventListener('change', () => this.chooseFile());
    this.meter = h('meter', { id: `${b}-level`, class: 'studio-level', min: 0, max: 1, low: 0.6, high: 0.9, optimum: 0.3, value: 0 });
    this.titleBox = h('input', { id: `${b}-title`, class: 'studio-title', maxlength: 255, autocomplete: 'off' });
    this.start = h('button', { type: 'button', class: 'studio-start primary', onclick: () => this.goLive() }, 'Start broadcast');
    this.stop = h('button', { type: 'button', class: 'studio-stop danger', disabled: true, onclick: () => this.end() }, 'Stop broadcast');
    const check = h('button', { type: 'button', class: 'studio-check', onclick: () => this.checkSound() }, 'Check sound');
    const sendTitle = h('button', { type: 'button', class: 'studio-send-title', onclick: () => this.sendTitle() }, 'Send title');
    this.el = h('div', { class: 'studio', 'data-event-id': id },
      this.stateLine,
      this.type ? null : h('p', { class: 'error' },
        'This browser cannot encode audio as Icecast streams it (WebM or Ogg with Opus): use a recent Chromium, Chrome, Edge or Firefox.'),
      h('div', { class: 'stack' },
        h('label', { for: `${b}-mic` }, 'Microphone'), this.mic,
        h('label', { for: `${b}-file` }, 'Also play a file (optional)'), this.file, this.filePlayer,
        h('label', { for: `${b}-level` }, 'Level'), this.meter,
        h('label', { for: `${b}-title` }, 'Now playing (optional: listeners see it)'), this.titleBox),
      h('p', { class: 'row' }, sendTitle, check),
      h('p', { class: 'row' }, this.start, this.stop),
      this.listeners, this.why.el);
    this.show('off');
  }

  show(state, detail) {
    const changed = this.state !== undefined && (state === 'live') !== (this.state === 'live');
    this.state = state;
    this.stateLine.textContent = detail ? `${STATES[state]}: ${detail}` : STATES[state];
    this.stateLine.dataset.state = state;
    this.el.classList.toggle('on', state === 'live');
    const busy = state === 'connecting' || state === 'live' || state === 'reconnecting';
    this.start.disabled = busy || !this.type;
    this.stop.disabled = !busy;
    if (!busy) this.listeners.textContent = '';
    if (changed) this.onChange();
  }

  /**
   * The mixing desk, made on the first press (browsers allow sound after a gesture), with the
   * chosen microphone (asked for again after a broadcast let it go).
   */
  async ensureDesk() {
    if (!this.desk) {
      this.desk = new AudioDesk();
      if (this.filePlayer.src) this.desk.useFile(this.filePlayer);
      this.meterLoop();
    }
    if (!this.desk.mic && this.micChoice() !== null) {
      await this.desk.useMicrophone(this.micChoice());
      await this.listMicrophones();
    }
    await this.desk.ctx.resume();
    return this.desk;
  }

  micChoice() {
    return this.mic.value === 'none' ? null : this.mic.value;
  }

  /** Fills the microphone list with the devices' names (known once one is allowed). */
  async listMicrophones() {
    const chosen = this.mic.value;
    const mics = await AudioDesk.microphones();
    const options = mics.map((d, i) => h('option', { value: d.deviceId }, d.label || `Microphone ${i + 1}`));
    this.mic.replaceChildren(h('option', { value: '' }, 'Default microphone'), ...options,
      h('option', { value: 'none' }, 'No microphone (the file only)'));
    if ([...this.mic.options].some((o) => o.value === chosen)) this.mic.value = chosen;
  }

  meterLoop() {
    const tick = () => {
      this.meter.value = this.desk.level();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  async checkSound() {
    this.why.clear();
    try {
      await this.ensureDesk();
      this.why.say(this.mic.value === 'none' ? 'No microphone: only the file is sent.' : 'The level shows what the microphone hears.');
    } catch (err) {
      this.why.fail(microphoneError(err));
    }
  }

  async changeMicrophone() {
    if (!this.desk) return;
    try {
      await this.desk.useMicrophone(this.micChoice());
    } catch (err) {
      this.why.fail(microphoneError(err));
    }
  }

  async chooseFile() {
    const [file] = this.file.files;
    if (this.filePlayer.src) URL.revokeObjectURL(this.filePlayer.src);
    if (!file) {
      this.filePlayer.removeAttribute('src');
      this.filePlayer.hidden = true;
      return;
    }
    this.filePlayer.src = URL.createObjectURL(file);
    this.filePlayer.hidden = false;
    if (this.desk) this.desk.useFile(this.filePlayer);
    this.why.say(`${file.name} is ready: press play on it to mix it in.`);
  }

  sendTitle() {
    this.title = this.titleBox.value.trim();
    if (this.title && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'metadata', data: { title: this.title } }));
      this.why.say('Title sent.');
    } else if (this.title) {
      this.why.say('The title goes out when the broadcast starts.');
    }
  }

  async goLive() {
    this.why.clear();
    this.wanted = true;
    this.attempt = 0;
    this.show('connecting');
    try {
      await this.ensureDesk();
    } catch (err) {
      this.wanted = false;
      this.show('off');
      this.why.fail(microphoneError(err));
      return;
    }
    this.connect();
  }

  /** One connection: hello, then a new recording (a whole stream) while the socket is open. */
  connect() {
    const ws = new WebSocket(webcastUrl(this.mount), 'webcast');
    this.ws = ws;
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify({
        type: 'hello',
        data: { mime: this.type, password: this.password(), audio: { ...this.desk.settings(), encoder: 'jars station page' } },
      }));
      if (this.title) ws.send(JSON.stringify({ type: 'metadata', data: { title: this.title } }));
      this.recording = this.desk.record(this.type, (blob) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(blob);
      });
    });
    ws.addEventListener('message', (ev) => this.status(ev.data));
    ws.addEventListener('close', (ev) => this.closed(ws, ev));
  }

  /** A `status` frame: whether Icecast has the show, and the listeners. */
  status(data) {
    if (typeof data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || frame.type !== 'status' || !frame.data) return;
    const { icecast, listeners } = frame.data;
    this.attempt = 0;
    if (icecast) this.show('live');
    else this.show(this.state === 'live' ? 'reconnecting' : 'connecting', this.state === 'live' ? 'jars is reaching Icecast again' : '');
    const n = Number(listeners) || 0;
    this.listeners.textContent = n === 1 ? '1 listener' : `${n} listeners`;
  }

  closed(ws, ev) {
    if (ws !== this.ws) return;
    if (this.recording) this.recording.stop();
    this.recording = null;
    this.ws = null;
    if (!this.wanted) {
      this.finish('off', 'You stopped the broadcast.');
      return;
    }
    const meaning = closeMeaning(ev.code, ev.reason);
    if (meaning.why) {
      this.wanted = false;
      this.finish('ended', meaning.why);
      return;
    }
    const wait = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.show('reconnecting', `trying again in ${Math.round(wait / 1000)} s`);
    setTimeout(() => {
      if (this.wanted && !this.ws) this.connect();
    }, wait);
  }

  /** The show is over (`state` off or ended): say why, let go of the microphone. */
  finish(state, why) {
    this.show(state, state === 'ended' ? why : '');
    if (state === 'ended') this.why.fail(why);
    else this.why.say(why);
    if (this.desk) this.desk.dropMicrophone();
  }

  /** Stop broadcast: the socket closes, jars ends the source. */
  end() {
    this.wanted = false;
    if (this.recording) this.recording.stop();
    if (this.ws) this.ws.close(1000, 'stopped');
    else this.finish('off', 'You stopped the broadcast.');
  }
}

function microphoneError(err) {
  if (err && err.name === 'NotAllowedError') return new Error('The browser was not allowed to use the microphone: allow it for this page, or choose "No microphone".');
  if (err && err.name === 'NotFoundError') return new Error('No microphone was found: plug one in, or choose "No microphone".');
  return new Error(`The microphone could not be used (${err && err.message ? err.message : err}).`);
}
