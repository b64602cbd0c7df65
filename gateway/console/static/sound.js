/* Sounds, made with the Web Audio API (nothing to download). Three, easy to tell apart:

   * critical — duress and alarms the site sends to the police at once: a fast high siren
     (1400/1000 Hz), every CRITICAL_EVERY_MS while any such alarm is not taken;
   * alarm    — any other open alarm no guard has taken: three beeps (880/660/880 Hz),
     every ALARM_EVERY_MS;
   * lost     — the link to the gateway is lost: two low, long tones (330/247 Hz),
     every LOST_EVERY_MS until it is back.

   The desk can silence them for MUTE_MS at most; a new alarm or a new loss ends that.
   Browsers start audio only after a click unless started with
   --autoplay-policy=no-user-gesture-required (the kiosk set-up in docs/console.md); until
   then the sound button says so in yellow. */
"use strict";

(function () {
  const CRITICAL_EVERY_MS = 2000;
  const ALARM_EVERY_MS = 4000;
  const LOST_EVERY_MS = 3000;
  const MUTE_MS = 2 * 60 * 1000;

  const PATTERNS = {
    critical: { wave: "square", gain: 0.3, notes: [[1400, 0, 0.16], [1000, 0.18, 0.16], [1400, 0.36, 0.16], [1000, 0.54, 0.16]] },
    alarm: { wave: "square", gain: 0.25, notes: [[880, 0, 0.2], [660, 0.22, 0.2], [880, 0.44, 0.2]] },
    lost: { wave: "triangle", gain: 0.4, notes: [[330, 0, 0.45], [247, 0.5, 0.6]] },
  };
  const EVERY = { critical: CRITICAL_EVERY_MS, alarm: ALARM_EVERY_MS, lost: LOST_EVERY_MS };

  const sound = { ctx: null, mutedUntil: 0, last: { critical: 0, alarm: 0, lost: 0 } };

  function unlock() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!sound.ctx) sound.ctx = new Ctx();
    if (sound.ctx.state === "suspended") sound.ctx.resume().then(window.Desk.renderSoundButton, () => {});
  }

  const running = () => !!sound.ctx && sound.ctx.state === "running";
  const muted = () => Date.now() < sound.mutedUntil;

  function play(kind) {
    unlock();
    const ctx = sound.ctx;
    if (!ctx || ctx.state !== "running") return false;
    const p = PATTERNS[kind];
    const start = ctx.currentTime + 0.02;
    p.notes.forEach(([freq, at, length]) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = p.wave;
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start + at);
      gain.gain.exponentialRampToValueAtTime(p.gain, start + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + at + length);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + at);
      osc.stop(start + at + length + 0.01);
    });
    return true;
  }

  /* Called every second with what the desk needs: plays each due sound, one at a time. */
  function tick(need) {
    if (muted()) return;
    const now = Date.now();
    for (const kind of ["lost", "critical", "alarm"]) {
      if (!need[kind]) continue;
      if (now - sound.last[kind] >= EVERY[kind]) {
        if (play(kind)) sound.last[kind] = now;
      }
      return; // the most urgent need speaks; the others wait their turn
    }
  }

  /* Something new (an alarm, a loss): sound now, whatever the mute said. */
  function alert(kind) {
    sound.mutedUntil = 0;
    sound.last[kind] = 0;
    if (play(kind)) sound.last[kind] = Date.now();
  }

  function toggleMute() {
    if (!running()) { unlock(); return; }
    sound.mutedUntil = muted() ? 0 : Date.now() + MUTE_MS;
  }

  function buttonState() {
    if (!running()) return ["blocked", ""];
    if (muted()) return ["muted", window.Desk.countdown(window.Desk.now() + sound.mutedUntil - Date.now())];
    return ["on", ""];
  }

  Object.assign(window.Desk, { sound: { unlock, tick, alert, toggleMute, buttonState, running } });
})();
