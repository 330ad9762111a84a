// The studio's sound: a microphone (or none) and an optional local file mixed into one stream,
// its level, and recordings of it encoded by the browser itself (MediaRecorder): WebM/Opus or
// Ogg/Opus, the formats Icecast 2.4 streams as they come. Nothing leaves the page from here.

/** The encodings tried, best first: Icecast 2.4.4 takes WebM and Ogg as a source's stream. */
const TYPES = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm'];
/** How often the recorder hands over what it encoded (ms): small, so listeners lag little. */
const SLICE_MS = 250;
/** Bits per second asked of the encoder. */
export const BITRATE = 128000;

/** The type this browser can encode in, or null (then it cannot broadcast from here). */
export function recordingType() {
  if (typeof MediaRecorder === 'undefined' || !navigator.mediaDevices) return null;
  return TYPES.find((t) => MediaRecorder.isTypeSupported(t)) || null;
}

/** A microphone and a file, mixed; created on a click (browsers start sound on a gesture). */
export class AudioDesk {
  constructor() {
    this.ctx = new AudioContext();
    this.mix = this.ctx.createGain();
    this.out = this.ctx.createMediaStreamDestination();
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.mix.connect(this.out);
    this.mix.connect(this.analyser);
    this.samples = new Float32Array(this.analyser.fftSize);
    this.peak = 0;
    this.mic = null;
    this.micNode = null;
    this.fileNode = null;
  }

  /** The microphones the browser offers (named once the person allowed one). */
  static async microphones() {
    const all = await navigator.mediaDevices.enumerateDevices();
    return all.filter((d) => d.kind === 'audioinput');
  }

  /**
   * Uses microphone `deviceId` ('' the default one, null none); asks the person the first
   * time. Echo cancellation and the like are off: they spoil music.
   */
  async useMicrophone(deviceId) {
    this.dropMicrophone();
    if (deviceId === null) return;
    const audio = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
    if (deviceId) audio.deviceId = { exact: deviceId };
    this.mic = await navigator.mediaDevices.getUserMedia({ audio });
    this.micNode = this.ctx.createMediaStreamSource(this.mic);
    this.micNode.connect(this.mix);
  }

  dropMicrophone() {
    if (this.micNode) this.micNode.disconnect();
    if (this.mic) this.mic.getTracks().forEach((t) => t.stop());
    this.mic = null;
    this.micNode = null;
  }

  /** Mixes the `<audio>` element `player` in (and lets the DJ hear it). */
  useFile(player) {
    if (!this.fileNode) {
      this.fileNode = this.ctx.createMediaElementSource(player);
      this.fileNode.connect(this.mix);
      this.fileNode.connect(this.ctx.destination);
    }
  }

  /** The loudness now, 0 to 1: the peak of the last moment, falling back slowly. */
  level() {
    this.analyser.getFloatTimeDomainData(this.samples);
    let top = 0;
    for (const s of this.samples) top = Math.max(top, Math.abs(s));
    this.peak = Math.max(top, this.peak * 0.92);
    return Math.min(1, this.peak);
  }

  /** Channels and sample rate of what is recorded, for the webcast `hello`. */
  settings() {
    return { channels: 2, samplerate: this.ctx.sampleRate, bitrate: BITRATE / 1000 };
  }

  /**
   * Starts a new recording of the mix in `type`, handing each encoded piece to `onData(blob)`.
   * Each recording is a whole stream (its own header): one per connection.
   */
  record(type, onData) {
    const recorder = new MediaRecorder(this.out.stream, { mimeType: type, audioBitsPerSecond: BITRATE });
    recorder.addEventListener('dataavailable', (ev) => {
      if (ev.data && ev.data.size) onData(ev.data);
    });
    recorder.start(SLICE_MS);
    return {
      stop() {
        if (recorder.state !== 'inactive') recorder.stop();
      },
    };
  }
}
