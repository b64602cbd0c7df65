/* Security desk console, shared core: the page's state, texts, time and small DOM helpers.
   Loaded first; the other scripts add to window.Desk. Plain DOM, no framework; every text
   from the gateway goes in through textContent. */
"use strict";

(function () {
  const TEXTS = window.CONSOLE_TEXTS;
  const Desk = (window.Desk = {});

  Desk.st = {
    lang: localStorage.getItem("alarmgw.lang") === "en" ? "en" : "vi",
    role: null, // "operator" | "display" | null (sees nothing)
    csrf: null,
    user: null,
    offsetMs: 0,
    site: { name: "", timezone: "Asia/Ho_Chi_Minh", wards: {}, devices: {}, desk_phone: "" },
    dayStart: 0,
    alarms: new Map(),
    devices: new Map(),
    reasons: new Map(),
    events: new Map(),
    health: null,
    known: null, // alarm ids seen so far; null until the first snapshot
  };
  const st = Desk.st;

  Desk.$ = (id) => document.getElementById(id);

  Desk.t = function (key, vars) {
    let s = key.split(".").reduce((o, k) => (o == null ? undefined : o[k]), TEXTS[st.lang]);
    if (s === undefined) s = key.split(".").pop();
    return String(s).replace(/\{(\w+)\}/g, (_, k) => (vars && vars[k] != null ? vars[k] : ""));
  };

  Desk.el = function (tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  };

  // -- time: the gateway's clock, shown in the site's time zone -------------------------------
  Desk.now = () => Date.now() + st.offsetMs;
  Desk.parseTs = (s) => (s ? Date.parse(s) : NaN);

  Desk.syncClock = function (serverNow) {
    const ms = Desk.parseTs(serverNow);
    if (!Number.isNaN(ms)) st.offsetMs = ms - Date.now();
  };

  Desk.clockText = function (ms, withSeconds) {
    const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (withSeconds) opts.second = "2-digit";
    try {
      opts.timeZone = st.site.timezone;
      return new Intl.DateTimeFormat(st.lang === "vi" ? "vi-VN" : "en-GB", opts).format(ms);
    } catch (e) {
      delete opts.timeZone;
      return new Intl.DateTimeFormat(undefined, opts).format(ms);
    }
  };

  Desk.agoText = function (ms) {
    const t = Desk.t;
    const s = Math.max(0, Math.floor((Desk.now() - ms) / 1000));
    if (s < 10) return t("just_now");
    if (s < 60) return t("ago_s", { s });
    if (s < 3600) return t("ago_m", { m: Math.floor(s / 60) });
    return t("ago_h", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  };

  Desk.countdown = function (ms) {
    const s = Math.max(0, Math.ceil((ms - Desk.now()) / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  };

  // -- what the alarms ask of the desk --------------------------------------------------------
  Desk.isOpen = (a) => a.state !== "resolved";
  Desk.isTaken = (a) => !!a.taken_by;
  Desk.isCritical = (a) => a.urgency === "critical" || a.type === "duress";
  Desk.openAlarms = () => [...st.alarms.values()].filter(Desk.isOpen).sort((a, b) =>
    (Desk.isTaken(a) - Desk.isTaken(b))
    || (Desk.isCritical(b) - Desk.isCritical(a))
    || Desk.parseTs(b.raised_at) - Desk.parseTs(a.raised_at));
  Desk.untaken = () => Desk.openAlarms().filter((a) => !Desk.isTaken(a));
  Desk.wardName = (id) => (st.site.wards && st.site.wards[id]) || id || "";
  Desk.deviceInfo = (id) => (st.site.devices && st.site.devices[id]) || {};
})();
