/* Security desk console: login, the live stream, the alarm cards and the actions.
   Plain DOM, no framework; every text from the gateway goes in through textContent. */
"use strict";

(function () {
  const TEXTS = window.CONSOLE_TEXTS;
  const $ = (id) => document.getElementById(id);
  const STALE_MS = 20000; // the server sends health every 5 s: silence this long is a lost link
  const BEEP_EVERY_MS = 5000;

  const st = {
    lang: localStorage.getItem("alarmgw.lang") === "en" ? "en" : "vi",
    csrf: null,
    user: null,
    es: null,
    connected: false,
    lastMessage: 0,
    probeTimer: null,
    offsetMs: 0,
    site: { name: "", timezone: "Asia/Ho_Chi_Minh", wards: {}, devices: {} },
    dayStart: 0,
    alarms: new Map(),
    devices: new Map(),
    reasons: new Map(),
    events: new Map(),
    health: null,
    known: null, // alarm ids seen so far; null until the first snapshot
    cards: new Map(),
    fresh: new Set(), // alarms raised while this page was open: they flash
    muted: false,
    audio: null,
    lastBeep: 0,
  };

  // -- texts --------------------------------------------------------------------------------
  function t(key, vars) {
    let s = key.split(".").reduce((o, k) => (o == null ? undefined : o[k]), TEXTS[st.lang]);
    if (s === undefined) s = key.split(".").pop();
    return String(s).replace(/\{(\w+)\}/g, (_, k) => (vars && vars[k] != null ? vars[k] : ""));
  }

  function applyTexts() {
    document.documentElement.lang = st.lang;
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    $("lang").textContent = t("other_lang");
    $("lang").lang = st.lang === "vi" ? "en" : "vi";
    document.title = (st.site.name ? st.site.name + " — " : "") + t("title");
    updateSoundButton();
    render();
  }

  // -- time ---------------------------------------------------------------------------------
  const now = () => Date.now() + st.offsetMs;
  const parseTs = (s) => (s ? Date.parse(s) : NaN);

  function syncClock(serverNow) {
    const ms = parseTs(serverNow);
    if (!Number.isNaN(ms)) st.offsetMs = ms - Date.now();
  }

  function clockText(ms, withSeconds) {
    const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (withSeconds) opts.second = "2-digit";
    try {
      opts.timeZone = st.site.timezone;
      return new Intl.DateTimeFormat(st.lang === "vi" ? "vi-VN" : "en-GB", opts).format(ms);
    } catch (e) {
      delete opts.timeZone;
      return new Intl.DateTimeFormat(undefined, opts).format(ms);
    }
  }

  function agoText(ms) {
    const s = Math.max(0, Math.floor((now() - ms) / 1000));
    if (s < 10) return t("just_now");
    if (s < 60) return t("ago_s", { s });
    if (s < 3600) return t("ago_m", { m: Math.floor(s / 60) });
    return t("ago_h", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  }

  function countdown(ms) {
    const s = Math.max(0, Math.ceil((ms - now()) / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  // -- sound and flash ----------------------------------------------------------------------
  function unlockAudio() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!st.audio) st.audio = new Ctx();
    if (st.audio.state === "suspended") st.audio.resume().then(updateSoundButton, () => {});
    updateSoundButton();
  }

  function beep() {
    const ctx = st.audio;
    if (!ctx || st.muted || ctx.state !== "running") return;
    st.lastBeep = Date.now();
    const start = ctx.currentTime;
    [[880, 0], [660, 0.22], [880, 0.44]].forEach(([freq, at]) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "square";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start + at);
      gain.gain.exponentialRampToValueAtTime(0.25, start + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + at + 0.2);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + at);
      osc.stop(start + at + 0.21);
    });
  }

  function updateSoundButton() {
    const b = $("sound");
    const blocked = !st.muted && (!st.audio || st.audio.state !== "running");
    b.textContent = st.muted ? t("sound_off") : blocked ? t("sound_blocked") : t("sound_on");
    b.classList.toggle("warn", blocked || st.muted);
  }

  function flash() {
    document.body.classList.remove("flash");
    void document.body.offsetWidth; // restart the animation
    document.body.classList.add("flash");
  }

  // -- connection ---------------------------------------------------------------------------
  function setConnected(ok) {
    st.connected = ok;
    $("banner").hidden = ok;
    document.body.classList.toggle("offline", !ok);
  }

  function connect() {
    if (st.es) st.es.close();
    clearTimeout(st.probeTimer);
    const es = new EventSource("/api/stream");
    st.es = es;
    const on = (name, fn) => es.addEventListener(name, (e) => {
      st.lastMessage = Date.now();
      fn(JSON.parse(e.data));
    });
    on("snapshot", (d) => { setConnected(true); applySnapshot(d); });
    on("alarm", (d) => { putAlarm(d); render(); });
    on("device", (d) => { st.devices.set(d.device, d); renderDevices(); });
    on("event", (d) => { addEvent(d); renderDevices(); renderHistory(); });
    on("health", (d) => { syncClock(d.now); st.health = d.health; renderHealth(); });
    on("ping", (d) => syncClock(d.now));
    on("expired", () => { dropStream(); showLogin(t("session_expired")); });
    es.onerror = () => {
      setConnected(false);
      if (es.readyState === EventSource.CLOSED) { dropStream(); probeSoon(); }
    };
  }

  function dropStream() {
    if (st.es) st.es.close();
    st.es = null;
  }

  function probeSoon() {
    clearTimeout(st.probeTimer);
    st.probeTimer = setTimeout(probe, 1000);
  }

  // After the stream closed for good: is the gateway back, and is the session still valid?
  async function probe() {
    let res;
    try {
      res = await fetch("/api/session", { credentials: "same-origin", cache: "no-store" });
    } catch (e) {
      setConnected(false);
      probeSoon();
      return;
    }
    setConnected(true);
    if (res.ok) {
      const body = await res.json();
      loggedIn(body);
    } else {
      const body = await res.json().catch(() => ({}));
      showLogin(body.accounts === 0 ? t("no_accounts") : (st.user ? t("session_lost") : ""));
    }
  }

  function watchdog() {
    if (st.es && st.connected && Date.now() - st.lastMessage > STALE_MS) {
      setConnected(false);
      dropStream();
      probeSoon();
    }
  }

  // -- login --------------------------------------------------------------------------------
  function showLogin(note) {
    dropStream();
    st.user = null;
    st.csrf = null;
    $("console").hidden = true;
    $("logout").hidden = true;
    $("user").textContent = "";
    $("login").hidden = false;
    $("login-note").textContent = note || "";
    $("login-error").textContent = "";
    $("login-password").value = "";
    $("login-name").focus();
  }

  function loggedIn(body) {
    st.user = body.name;
    st.csrf = body.csrf;
    $("login").hidden = true;
    $("console").hidden = false;
    $("logout").hidden = false;
    $("user").textContent = body.name;
    connect();
  }

  async function submitLogin(ev) {
    ev.preventDefault();
    unlockAudio();
    $("login-error").textContent = "";
    const name = $("login-name").value.trim();
    const password = $("login-password").value;
    let res;
    try {
      res = await fetch("/api/login", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name, password }),
      });
    } catch (e) {
      setConnected(false);
      $("login-error").textContent = t("lost");
      return;
    }
    setConnected(true);
    const body = await res.json().catch(() => ({}));
    if (res.ok) {
      loggedIn(body);
    } else if (res.status === 429) {
      $("login-error").textContent = t("login_throttled", { s: res.headers.get("Retry-After") || "?" });
    } else if (res.status === 401) {
      $("login-error").textContent = t("login_wrong");
    } else {
      $("login-error").textContent = t("login_failed", { e: body.error || res.status });
    }
  }

  async function logout() {
    try {
      await fetch("/api/logout", { method: "POST", credentials: "same-origin",
                                   headers: { "X-CSRF-Token": st.csrf || "" } });
    } catch (e) { /* the session ends with the gateway anyway */ }
    showLogin("");
  }

  // -- state --------------------------------------------------------------------------------
  function applySnapshot(d) {
    syncClock(d.now);
    st.site = d.site;
    st.dayStart = parseTs(d.day_start);
    st.health = d.health;
    const fresh = st.known === null;
    if (fresh) st.known = new Set();
    st.alarms.clear();
    d.alarms.forEach((a) => putAlarm(a, fresh));
    st.devices.clear();
    d.devices.forEach((dev) => st.devices.set(dev.device, dev));
    st.events.clear();
    st.reasons.clear();
    d.history.forEach(addEvent);
    applyTexts();
  }

  function putAlarm(a, quiet) {
    if (a.deleted) { st.alarms.delete(a.id); return; }
    const isNew = !st.known.has(a.id);
    st.known.add(a.id);
    st.alarms.set(a.id, a);
    if (isNew && !quiet && a.state !== "resolved") {
      flash();
      beep();
      st.fresh.add(a.id);
    }
  }

  function addEvent(e) {
    if (st.events.has(e.id)) return;
    st.events.set(e.id, e);
    if (e.device && ["tamper", "tamper_ok", "low_battery", "supervision_lost",
                     "supervision_restored"].includes(e.type)) {
      const r = st.reasons.get(e.device) || {};
      if (e.type === "tamper") r.tamper = true;
      if (e.type === "tamper_ok") r.tamper = false;
      if (e.type === "low_battery") r.low_battery = true;
      if (e.type === "supervision_lost") r.supervision_lost = true;
      if (e.type === "supervision_restored") r.supervision_lost = false;
      st.reasons.set(e.device, r);
    }
  }

  const wardName = (id) => (st.site.wards && st.site.wards[id]) || id || "";
  const deviceInfo = (id) => (st.site.devices && st.site.devices[id]) || {};
  const openAlarms = () => [...st.alarms.values()]
    .filter((a) => a.state !== "resolved")
    .sort((a, b) => (b.state === "raised") - (a.state === "raised")
                    || parseTs(b.raised_at) - parseTs(a.raised_at));

  // -- rendering ----------------------------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function render() {
    if (st.known === null) return;
    $("site-name").textContent = st.site.name || t("title");
    renderAlarms();
    renderDevices();
    renderHealth();
    renderHistory();
  }

  function renderAlarms() {
    const list = openAlarms();
    const box = $("alarms");
    const keep = new Set(list.map((a) => a.id));
    for (const [id, card] of st.cards) {
      if (!keep.has(id)) { card.remove(); st.cards.delete(id); }
    }
    list.forEach((a, i) => {
      let card = st.cards.get(a.id);
      if (!card) {
        card = buildCard(a.id);
        st.cards.set(a.id, card);
        if (st.fresh.has(a.id)) card.classList.add("new");
      }
      if (box.children[i] !== card) box.insertBefore(card, box.children[i] || null);
      fillCard(card, a);
    });
    $("alarm-count").textContent = String(list.length);
    $("no-alarms").hidden = list.length > 0;
    document.body.classList.toggle("alarming", list.some((a) => a.state === "raised"));
  }

  function buildCard(id) {
    const card = el("article", "alarm");
    card.dataset.id = id;
    const head = el("div", "alarm-head");
    head.append(el("span", "type"), el("span", "drill"), el("span", "code"));
    const where = el("div", "where");
    where.append(el("span", "ward"), el("span", "room"));
    const facts = el("div", "facts");
    facts.append(el("span", "ago"), el("span", "presses"));
    const police = el("div", "police");
    police.append(el("span", "police-label"), el("span", "police-state"));
    const note = el("input", "note");
    note.type = "text";
    note.maxLength = 500;
    const actions = el("div", "actions");
    ["ack", "escalate", "resolve"].forEach((action) => {
      const b = el("button", "action " + action);
      b.type = "button";
      b.dataset.action = action;
      b.addEventListener("click", () => act(card, action));
      actions.append(b);
    });
    card.append(head, el("div", "state"), where, el("div", "device"), facts, police, note,
                actions, el("p", "result"));
    card.querySelector(".result").setAttribute("role", "status");
    return card;
  }

  function fillCard(card, a) {
    const q = (s) => card.querySelector(s);
    const info = deviceInfo(a.device);
    card.className = card.className.replace(/\bstate-\S+/g, "").trim() + " state-" + a.state;
    card.classList.toggle("is-drill", !!a.drill);
    q(".type").textContent = t("types." + a.type);
    q(".drill").textContent = a.drill ? t("drill") : "";
    q(".code").textContent = t("code") + " " + a.code;
    q(".state").textContent = t("states." + a.state);
    q(".ward").textContent = wardName(a.ward);
    q(".room").textContent = a.room || info.room || "";
    q(".device").textContent = t("device") + ": " + (info.name ? info.name + " (" + a.device + ")" : a.device);
    q(".ago").textContent = agoText(parseTs(a.raised_at));
    q(".presses").textContent = a.press_count > 1 ? t("presses", { n: a.press_count }) : "";
    q(".police-label").textContent = t("police") + ": ";
    const [policeText, policeClass] = policeState(a);
    q(".police-state").textContent = policeText;
    q(".police").className = "police " + policeClass;
    q(".note").placeholder = t("note");
    card.querySelectorAll("button.action").forEach((b) => {
      b.textContent = t(b.dataset.action);
      b.disabled = card.classList.contains("busy") || !allowed(a, b.dataset.action);
    });
  }

  function allowed(a, action) {
    if (a.state === "resolved") return false;
    if (action === "ack") return a.state === "raised";
    if (action === "escalate") return a.state !== "police_acknowledged" && !policeBusy(a);
    return true;
  }

  const liveEscalations = (a) => (a.escalations || []).filter(
    (e) => e.status !== "superseded" && e.status !== "standby");
  const policeBusy = (a) => {
    const live = liveEscalations(a);
    return live.length > 0 && !live.some((e) => e.status === "delivered")
      && !live.every((e) => e.status === "failed");
  };

  function policeState(a) {
    const live = liveEscalations(a);
    const delivered = live.filter((e) => e.status === "delivered");
    const police = (a.history || []).filter((h) => String(h.by || "").startsWith("police:"));
    if (police.some((h) => h.state === "closed")) return [t("police_closed"), "p-ack"];
    if (police.some((h) => h.state === "on_scene")) return [t("police_on_scene"), "p-ack"];
    if (a.state === "police_acknowledged") {
      const took = police.filter((h) => h.state === "police_acknowledged").pop();
      return [took ? t("police_ack_by", { who: took.by.slice(7) }) : t("police_ack"), "p-ack"];
    }
    if (delivered.length || a.state === "escalated") {
      const channels = [...new Set(delivered.map((e) => e.channel))].join(", ").toUpperCase();
      return [t("police_sent", { c: channels || "✓" }), "p-sent"];
    }
    if (live.length && live.every((e) => e.status === "failed")) return [t("police_failed"), "p-failed"];
    if (live.length) return [t("police_sending"), "p-sending"];
    const due = parseTs(a.police_due_at);
    if (!Number.isNaN(due) && a.state === "raised") {
      return due > now() ? [t("police_due", { t: countdown(due) }), "p-due"]
                         : [t("police_due_now"), "p-due"];
    }
    if (a.state === "acknowledged") return [t("police_cancelled"), "p-none"];
    return [t("police_none"), "p-none"];
  }

  async function act(card, action) {
    unlockAudio();
    const id = card.dataset.id;
    const result = card.querySelector(".result");
    const note = card.querySelector(".note");
    card.classList.add("busy");
    card.classList.remove("new");
    result.className = "result";
    result.textContent = t("sending");
    fillCard(card, st.alarms.get(id));
    let res, body;
    try {
      res = await fetch("/api/alarms/" + encodeURIComponent(id) + "/command", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": st.csrf || "" },
        body: JSON.stringify({ action, note: note.value }),
      });
      body = await res.json().catch(() => ({}));
    } catch (e) {
      res = null;
      body = { error: t("lost") };
    }
    card.classList.remove("busy");
    if (res && res.status === 401) { showLogin(t("session_expired")); return; }
    if (res && res.ok && body.ok) {
      result.textContent = t("done_" + action);
      result.className = "result ok";
      note.value = "";
      if (body.alarm) putAlarm(body.alarm);
    } else {
      result.textContent = t("failed", { e: body.error || (res ? res.status : "?") });
      result.className = "result err";
    }
    render();
  }

  function renderDevices() {
    if (st.known === null) return;
    const ul = $("devices");
    ul.replaceChildren();
    const ids = Object.keys(st.site.devices || {});
    for (const id of st.devices.keys()) if (!ids.includes(id)) ids.push(id);
    const order = { alarm: 0, offline: 1, trouble: 2, normal: 3 };
    const rows = ids.map((id) => [id, st.devices.get(id) || { device: id, state: "normal" }])
      .sort((x, y) => (order[x[1].state] ?? 9) - (order[y[1].state] ?? 9) || x[0].localeCompare(y[0]));
    for (const [id, d] of rows) {
      const info = deviceInfo(id);
      const li = el("li", "device-row dev-" + d.state);
      li.dataset.device = id;
      li.append(el("span", "dev-state", t("device_states." + d.state)));
      li.append(el("span", "dev-name", (info.name || id) + " — " + wardName(d.ward || info.ward) + ", " + (d.room || info.room || "")));
      const extra = [];
      const r = st.reasons.get(id) || {};
      if (d.state !== "normal" && d.state !== "alarm") {
        Object.keys(r).filter((k) => r[k]).forEach((k) => extra.push(t("reasons." + k)));
      }
      if (d.battery_mv) extra.push(t("battery", { mv: d.battery_mv }));
      if (d.last_seen) extra.push(t("last_seen", { t: clockText(parseTs(d.last_seen), false) }));
      li.append(el("span", "dev-extra", extra.join(" · ")));
      ul.append(li);
    }
  }

  function partOk(v) {
    if (!v || typeof v !== "object") return true;
    if (v.connected === false || v.listening === false) return false;
    if (v.error || v.state === "trouble" || v.state === "failed") return false;
    return true;
  }

  function renderHealth() {
    if (st.known === null || !st.health) return;
    const h = st.health;
    const ul = $("health");
    ul.replaceChildren();
    const row = (label, value, ok) => {
      const li = el("li", ok === false ? "bad" : "");
      li.append(el("span", "h-label", label), el("span", "h-value", value));
      ul.append(li);
    };
    const up = Math.floor(h.uptime_s || 0);
    row(t("uptime"), Math.floor(up / 3600) + " h " + Math.floor((up % 3600) / 60) + " min");
    const mqtt = h.journal && h.journal.mqtt;
    if (mqtt) row(t("backlog"), String(mqtt.backlog), mqtt.backlog < 100);
    if (h.disk_free_mb != null) row(t("disk"), h.disk_free_mb + " MB", h.disk_free_mb > 200);
    for (const [k, v] of Object.entries(h)) {
      if (!v || typeof v !== "object" || k === "journal") continue;
      if (v.configured === false) { row(t("parts." + k), t("not_configured")); continue; }
      const ok = partOk(v);
      const detail = v.error || v.last_error || "";
      row(t("parts." + k), ok ? t("ok") : t("trouble") + (detail ? ": " + detail : ""), ok);
    }
    row(t("version"), h.version || "");
  }

  function historyLines() {
    const lines = [];
    for (const a of st.alarms.values()) {
      const place = wardName(a.ward) + " · " + (a.room || "") + " (" + t("code") + " " + a.code + ")";
      for (const h of a.history || []) {
        const ms = parseTs(h.ts);
        if (ms < st.dayStart) continue;
        lines.push({ ms, kind: "alarm", what: t("history_states." + h.state), where: place,
                     by: h.by, drill: a.drill });
      }
    }
    for (const e of st.events.values()) {
      if (["alarm_state", "press", "hold", "escalation_attempt"].includes(e.type)) continue;
      const info = deviceInfo(e.device);
      const where = e.device ? wardName(e.ward || info.ward) + " · " + (e.room || info.room || "") : "";
      const by = e.detail && (e.detail.by || e.detail.from) || "";
      let what = t("events." + e.type);
      if (e.type === "rejected_command" && e.detail && e.detail.reason) what += ": " + e.detail.reason;
      lines.push({ ms: parseTs(e.ts), kind: e.type, what, where, by, drill: e.drill });
    }
    return lines.sort((x, y) => y.ms - x.ms).slice(0, 300);
  }

  function renderHistory() {
    if (st.known === null) return;
    const ol = $("history");
    ol.replaceChildren();
    const lines = historyLines();
    for (const line of lines) {
      const li = el("li", "h-" + line.kind);
      li.append(el("time", "h-time", clockText(line.ms, true)));
      li.append(el("span", "h-what", line.what + (line.drill ? " [" + t("drill") + "]" : "")));
      if (line.where) li.append(el("span", "h-where", line.where));
      if (line.by) li.append(el("span", "h-by", t("by", { by: line.by })));
      ol.append(li);
    }
    $("no-history").hidden = lines.length > 0;
  }

  function tick() {
    $("clock").textContent = st.known === null ? "" : clockText(now(), true);
    for (const [id, card] of st.cards) {
      const a = st.alarms.get(id);
      if (!a) continue;
      card.querySelector(".ago").textContent = agoText(parseTs(a.raised_at));
      const [text, cls] = policeState(a);
      card.querySelector(".police-state").textContent = text;
      card.querySelector(".police").className = "police " + cls;
    }
    if (document.body.classList.contains("alarming") && Date.now() - st.lastBeep > BEEP_EVERY_MS) beep();
    watchdog();
  }

  // -- start --------------------------------------------------------------------------------
  $("login-form").addEventListener("submit", submitLogin);
  $("logout").addEventListener("click", logout);
  $("lang").addEventListener("click", () => {
    st.lang = st.lang === "vi" ? "en" : "vi";
    localStorage.setItem("alarmgw.lang", st.lang);
    applyTexts();
  });
  $("sound").addEventListener("click", () => {
    if (st.audio && st.audio.state === "running") st.muted = !st.muted;
    else st.muted = false;
    unlockAudio();
    updateSoundButton();
  });
  document.addEventListener("click", unlockAudio, { capture: true });
  document.addEventListener("keydown", unlockAudio, { capture: true });
  document.body.addEventListener("animationend", (e) => {
    if (e.target === document.body) document.body.classList.remove("flash");
  });
  applyTexts();
  setInterval(tick, 1000);
  probe();
})();
