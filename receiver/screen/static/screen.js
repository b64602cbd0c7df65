/* Police wall screen: login, the live stream, alarm cards, sites and history, the officers'
   buttons. Plain DOM, no framework; every text from a hospital goes in through textContent. */
"use strict";

(function () {
  const TEXTS = window.SCREEN_TEXTS;
  const $ = (id) => document.getElementById(id);
  const STALE_MS = 15000;    // the server sends health every 5 s: silence this long is a lost link
  const RING_EVERY_MS = 3000; // a new alarm rings until an officer takes it
  // cards drawn at most (new ones first, then newest): a mass alarm's hundredth card is of no
  // use on a wall, and laying out hundreds of big cards per event would delay the next event
  const MAX_CARDS = 30;
  const LINK_EVERY_MS = 10000; // a lost site or a lost stream sounds this often

  const st = {
    lang: localStorage.getItem("alarm-receiver.lang") === "en" ? "en" : "vi",
    csrf: null, user: null, es: null, connected: false, lastMessage: 0, probeTimer: null,
    offsetMs: 0, receiver: { name: "", timezone: "Asia/Ho_Chi_Minh" }, dayStart: 0,
    alarms: new Map(), sites: new Map(), events: [], known: null, cards: new Map(),
    muted: false, audio: null, lastRing: 0, lastLinkSound: 0, everConnected: false,
    dirty: new Set(), all: true, pending: false,
  };

  // -- texts ----------------------------------------------------------------------------------
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
    document.title = (st.receiver.name ? st.receiver.name + " — " : "") + t("title");
    updateSoundButton();
    st.all = true;
    render();
  }

  // -- time -----------------------------------------------------------------------------------
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
      opts.timeZone = st.receiver.timezone;
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

  // -- sound ----------------------------------------------------------------------------------
  function unlockAudio() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!st.audio) st.audio = new Ctx();
    if (st.audio.state === "suspended") st.audio.resume().then(updateSoundButton, () => {});
    updateSoundButton();
  }

  function tone(notes) {
    const ctx = st.audio;
    if (!ctx || st.muted || ctx.state !== "running") return;
    const start = ctx.currentTime;
    notes.forEach(([freq, at, len]) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "square";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start + at);
      gain.gain.exponentialRampToValueAtTime(0.3, start + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + at + len);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + at);
      osc.stop(start + at + len + 0.01);
    });
  }

  const ring = () => { st.lastRing = Date.now(); tone([[988, 0, 0.18], [740, 0.2, 0.18], [988, 0.4, 0.18], [740, 0.6, 0.18]]); };
  const linkSound = () => { st.lastLinkSound = Date.now(); tone([[440, 0, 0.5], [330, 0.55, 0.7]]); };

  function updateSoundButton() {
    const b = $("sound");
    const blocked = !st.muted && (!st.audio || st.audio.state !== "running");
    b.textContent = st.muted ? t("sound_off") : blocked ? t("sound_blocked") : t("sound_on");
    b.classList.toggle("warn", blocked || st.muted);
  }

  // -- connection -----------------------------------------------------------------------------
  function setConnected(ok) {
    st.connected = ok;
    $("banner").hidden = ok || !st.everConnected;
    document.body.classList.toggle("offline", !ok && st.everConnected);
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
    on("snapshot", (d) => { st.everConnected = true; setConnected(true); applySnapshot(d); });
    on("alarm", (d) => { putAlarm(d, false); soon(); });
    on("site", (d) => { putSite(d); soon(); });
    on("event", (d) => { st.events.push(d); if (st.events.length > 600) st.events.splice(0, 300); soon(); });
    on("health", (d) => syncClock(d.now));
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

  // After the stream closed: is the receiver back, and is the session still valid?
  async function probe() {
    let res;
    try {
      res = await fetch("/api/session", { credentials: "same-origin", cache: "no-store" });
    } catch (e) {
      setConnected(false);
      probeSoon();
      return;
    }
    if (res.ok) {
      loggedIn(await res.json());
    } else {
      setConnected(true);
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

  // -- login ----------------------------------------------------------------------------------
  function showLogin(note) {
    dropStream();
    st.user = null;
    st.csrf = null;
    $("screen").hidden = true;
    $("logout").hidden = true;
    $("user").textContent = "";
    $("login").hidden = false;
    $("login-note").textContent = note || "";
    $("login-error").textContent = "";
    $("login-password").value = "";
    $("login-name").focus();
  }

  function loggedIn(body) {
    st.user = body.shown || body.name;
    st.csrf = body.csrf;
    $("login").hidden = true;
    $("screen").hidden = false;
    $("logout").hidden = false;
    $("user").textContent = st.user;
    connect();
  }

  async function submitLogin(ev) {
    ev.preventDefault();
    unlockAudio();
    $("login-error").textContent = "";
    let res;
    try {
      res = await fetch("/api/login", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: $("login-name").value.trim(), password: $("login-password").value }),
      });
    } catch (e) {
      $("login-error").textContent = t("lost");
      return;
    }
    const body = await res.json().catch(() => ({}));
    if (res.ok) loggedIn(body);
    else if (res.status === 429) $("login-error").textContent = t("login_throttled", { s: res.headers.get("Retry-After") || "?" });
    else if (res.status === 401) $("login-error").textContent = t("login_wrong");
    else $("login-error").textContent = t("login_failed", { e: body.error || res.status });
  }

  async function logout() {
    try {
      await fetch("/api/logout", { method: "POST", credentials: "same-origin",
                                   headers: { "X-CSRF-Token": st.csrf || "" } });
    } catch (e) { /* the session expires anyway */ }
    showLogin("");
  }

  // -- state ----------------------------------------------------------------------------------
  function applySnapshot(d) {
    syncClock(d.now);
    st.receiver = d.receiver;
    st.dayStart = parseTs(d.day_start);
    const first = st.known === null;
    if (first) st.known = new Set();
    st.alarms.clear();
    st.all = true;
    d.alarms.forEach((a) => putAlarm(a, true));
    st.sites.clear();
    d.sites.forEach(putSite);
    st.events = d.history.slice();
    if (d.user) { st.user = d.user; $("user").textContent = d.user; }
    applyTexts();
  }

  function putAlarm(a, quiet) {
    const isNew = !st.known.has(a.ref);
    st.known.add(a.ref);
    st.alarms.set(a.ref, a);
    st.dirty.add(a.ref);
    if (isNew && !quiet && a.state === "new") ring();
  }

  function putSite(s) {
    const before = st.sites.get(s.id);
    st.sites.set(s.id, s);
    if (before && before.link !== "lost" && s.link === "lost") linkSound();
  }

  const openAlarms = () => [...st.alarms.values()]
    .filter((a) => a.state !== "closed")
    .sort((a, b) => (b.state === "new") - (a.state === "new")
                    || parseTs(b.received_at) - parseTs(a.received_at));
  const siteName = (id) => (st.sites.get(id) || {}).name || id;

  // -- rendering ------------------------------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  // A burst of news (a mass alarm) is drawn once, on the next frame, and only what changed.
  function soon() {
    if (st.pending) return;
    st.pending = true;
    const draw = () => { if (st.pending) { st.pending = false; render(); } };
    requestAnimationFrame(draw);
    setTimeout(draw, 100); // no frames in a hidden tab: draw anyway
  }

  function render() {
    st.pending = false;
    if (st.known === null) return;
    $("receiver-name").textContent = st.receiver.name || t("title");
    const full = st.all;
    renderAlarms();
    renderSites();
    renderHistory(full);
  }

  function renderAlarms() {
    const all = openAlarms();
    const list = all.slice(0, MAX_CARDS);
    const box = $("alarms");
    const keep = new Set(list.map((a) => a.ref));
    for (const [ref, card] of st.cards) {
      if (!keep.has(ref)) { card.remove(); st.cards.delete(ref); }
    }
    list.forEach((a, i) => {
      let card = st.cards.get(a.ref);
      if (!card) { card = buildCard(a.ref); st.cards.set(a.ref, card); st.dirty.add(a.ref); }
      if (box.children[i] !== card) box.insertBefore(card, box.children[i] || null);
      if (st.all || st.dirty.has(a.ref)) fillCard(card, a);
    });
    st.dirty.clear();
    st.all = false;
    $("alarm-count").textContent = String(all.length);
    $("more-alarms").hidden = all.length <= list.length;
    $("more-alarms").textContent = t("more_alarms", { n: all.length - list.length });
    $("no-alarms").hidden = all.length > 0;
    document.body.classList.toggle("alarming", all.some((a) => a.state === "new"));
  }

  function buildCard(ref) {
    const card = el("article", "alarm");
    card.dataset.ref = String(ref);
    const head = el("div", "alarm-head");
    head.append(el("span", "type"), el("span", "drill"), el("span", "code"));
    const where = el("div", "where");
    where.append(el("span", "ward"), el("span", "room"));
    const facts = el("div", "facts");
    facts.append(el("span", "time"), el("span", "ago"), el("span", "presses"), el("span", "rounds"));
    const note = el("input", "note");
    note.type = "text";
    note.maxLength = 500;
    const actions = el("div", "actions");
    ["take", "on_scene", "close"].forEach((action) => {
      const b = el("button", "action " + action);
      b.type = "button";
      b.dataset.action = action;
      b.addEventListener("click", () => act(card, action));
      actions.append(b);
    });
    card.append(head, el("div", "hospital"), el("div", "address"), where, facts,
                el("div", "state"), el("div", "local"), note, actions, el("p", "result"));
    card.querySelector(".result").setAttribute("role", "status");
    return card;
  }

  function fillCard(card, a) {
    const q = (s) => card.querySelector(s);
    card.className = "alarm state-" + a.state + (a.drill ? " is-drill" : "") + (card.classList.contains("busy") ? " busy" : "");
    q(".type").textContent = t("types." + a.type);
    q(".drill").textContent = a.drill ? t("drill") : "";
    q(".code").textContent = t("code") + " " + a.code;
    q(".hospital").textContent = a.site_name || a.site;
    const site = st.sites.get(a.site) || {};
    q(".address").textContent = [site.address, site.phone ? t("phone", { p: site.phone }) : ""].filter(Boolean).join(" · ");
    q(".ward").textContent = (a.ward && a.ward.name) || (a.ward && a.ward.id) || "";
    q(".room").textContent = a.room || "";
    q(".time").textContent = clockText(parseTs(a.raised_at), true);
    q(".ago").textContent = agoText(parseTs(a.raised_at));
    q(".presses").textContent = a.press_count > 1 ? t("presses", { n: a.press_count }) : "";
    q(".rounds").textContent = a.deliveries > 1 ? t("rounds", { n: a.deliveries }) : "";
    q(".state").textContent = stateText(a);
    q(".local").textContent = a.acknowledged_locally ? t("security_acked") : "";
    q(".note").placeholder = t("note");
    card.querySelectorAll("button.action").forEach((b) => {
      b.textContent = t(b.dataset.action);
      b.disabled = card.classList.contains("busy") || !allowed(a, b.dataset.action);
    });
  }

  function stateText(a) {
    const last = (a.history || []).filter((h) => h.state === a.state).pop();
    if (a.state === "new" || !last) return t("states." + a.state);
    return t("by_officer", { s: t("states." + a.state), by: last.by, t: clockText(parseTs(last.ts), false) });
  }

  function allowed(a, action) {
    if (action === "take") return a.state === "new";
    if (action === "on_scene") return a.state === "police_acknowledged";
    return a.state === "police_acknowledged" || a.state === "on_scene";
  }

  async function act(card, action) {
    unlockAudio();
    const ref = card.dataset.ref;
    const result = card.querySelector(".result");
    const note = card.querySelector(".note");
    if (action === "close" && !note.value.trim()) {
      result.textContent = t("need_note");
      result.className = "result err";
      note.focus();
      return;
    }
    card.classList.add("busy");
    result.className = "result";
    result.textContent = t("sending");
    fillCard(card, st.alarms.get(Number(ref)));
    let res, body;
    try {
      res = await fetch("/api/alarms/" + encodeURIComponent(ref) + "/action", {
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
      if (body.alarm) putAlarm(body.alarm, true);
    } else {
      result.textContent = t("failed", { e: body.error || (res ? res.status : "?") });
      result.className = "result err";
    }
    render();
  }

  function renderSites() {
    if (st.known === null) return;
    const ul = $("sites");
    ul.replaceChildren();
    const order = { lost: 0, unknown: 1, ok: 2 };
    const rows = [...st.sites.values()].sort((x, y) => (order[x.link] ?? 9) - (order[y.link] ?? 9)
                                                      || x.name.localeCompare(y.name));
    let lost = 0;
    for (const s of rows) {
      if (s.link === "lost") lost += 1;
      const li = el("li", "site link-" + s.link);
      li.dataset.site = s.id;
      li.append(el("span", "site-link", t("link." + s.link)));
      li.append(el("span", "site-name", s.name));
      const seen = s.last_seen ? t("last_seen", { t: clockText(parseTs(s.last_seen), false) + " (" + agoText(parseTs(s.last_seen)) + ")" }) : t("never_seen");
      li.append(el("span", "site-extra", seen + (s.noted_by ? " · " + t("noted_by", { by: s.noted_by }) : "")));
      if (s.link === "lost" && !s.noted_by) {
        const b = el("button", "note-link", t("note_link"));
        b.type = "button";
        b.addEventListener("click", () => noteSite(s.id));
        li.append(b);
      }
      ul.append(li);
    }
    $("sites-lost").hidden = lost === 0;
    $("sites-lost").textContent = String(lost);
    document.body.classList.toggle("sites-lost", lost > 0);
  }

  async function noteSite(id) {
    unlockAudio();
    try {
      const res = await fetch("/api/sites/" + encodeURIComponent(id) + "/note", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": st.csrf || "" }, body: "{}",
      });
      const body = await res.json().catch(() => ({}));
      if (res.status === 401) { showLogin(t("session_expired")); return; }
      if (body.site) { putSite(body.site); renderSites(); }
    } catch (e) { setConnected(false); }
  }

  function historyText(e) {
    let what = t("events." + e.type);
    if (e.type === "officer_action") what = t("states." + e.state);
    if (e.type === "alarm_received") what += ": " + t("types." + (e.alarm_type || e.type));
    if (e.type === "refused") what += ": " + (e.status || "") + " " + (e.reason || "");
    const extra = [];
    if (e.code) extra.push(t("code") + " " + e.code);
    if (e.note) extra.push("“" + e.note + "”");
    return [what, extra.join(" · ")];
  }

  function historyItem(e) {
    const li = el("li", "h-" + e.type);
    const [what, extra] = historyText(e);
    li.append(el("time", "h-time", clockText(parseTs(e.ts), true)));
    li.append(el("span", "h-what", what + (e.drill ? " [" + t("drill") + "]" : "")));
    if (e.site) li.append(el("span", "h-where", siteName(e.site)));
    if (extra) li.append(el("span", "h-extra", extra));
    if (e.by && e.type !== "alarm_received") li.append(el("span", "h-by", t("by", { by: e.by })));
    return li;
  }

  // Newest first; new lines are added on top, the whole list is redrawn only when asked.
  function renderHistory(full) {
    if (st.known === null) return;
    const ol = $("history");
    const today = st.events.filter((e) => parseTs(e.ts) >= st.dayStart);
    if (full || st.shown === undefined || st.shown > today.length) {
      ol.replaceChildren(...today.slice(-300).reverse().map(historyItem));
    } else {
      today.slice(st.shown).forEach((e) => ol.prepend(historyItem(e)));
      while (ol.children.length > 300) ol.lastChild.remove();
    }
    st.shown = today.length;
    $("no-history").hidden = today.length > 0;
  }

  function tick() {
    $("clock").textContent = st.known === null ? "" : clockText(now(), true);
    for (const [ref, card] of st.cards) {
      const a = st.alarms.get(ref);
      if (a) card.querySelector(".ago").textContent = agoText(parseTs(a.raised_at));
    }
    const ringing = document.body.classList.contains("alarming") && st.connected;
    if (ringing && Date.now() - st.lastRing > RING_EVERY_MS) ring();
    const unseenLost = [...st.sites.values()].some((s) => s.link === "lost" && !s.noted_by);
    const streamLost = st.everConnected && !st.connected && st.user;
    if ((unseenLost || streamLost) && !ringing && Date.now() - st.lastLinkSound > LINK_EVERY_MS) linkSound();
    watchdog();
  }

  // -- start ----------------------------------------------------------------------------------
  $("login-form").addEventListener("submit", submitLogin);
  $("logout").addEventListener("click", logout);
  $("lang").addEventListener("click", () => {
    st.lang = st.lang === "vi" ? "en" : "vi";
    localStorage.setItem("alarm-receiver.lang", st.lang);
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
  applyTexts();
  setInterval(tick, 1000);
  probe();
})();
