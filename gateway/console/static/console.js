/* Security desk console, main: who is looking (operator, wall screen, nobody), the live
   stream and its loss, the alarm list, and the one-second tick that drives sound and
   countdowns. The desk must never go blind silently:

   * a lost stream is a banner and a sound within STALE_MS + 1 s (the gateway pings every
     2 s), LOST_GRACE_MS after a dropped connection; restored quietly;
   * an open alarm nobody has taken sounds until someone takes it, whatever its state;
   * a page that may not see alarms says so in red, and keeps sounding alarms it knew of. */
"use strict";

(function () {
  const D = window.Desk;
  const { t, st, $ } = D;
  const STALE_MS = 5000;
  const LOST_GRACE_MS = 1500;
  const PROBE_TIMEOUT_MS = 4000;

  const link = { es: null, lastMessage: 0, troubleSince: 0, lost: false, probeTimer: null };
  const cards = new Map();

  // -- texts and the header -----------------------------------------------------------------
  function applyTexts() {
    document.documentElement.lang = st.lang;
    document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
    $("lang").textContent = t("other_lang");
    $("lang").lang = st.lang === "vi" ? "en" : "vi";
    document.title = (st.site.name ? st.site.name + " — " : "") + t("title");
    renderAccess();
    render();
  }

  function renderSoundButton() {
    const [state, left] = D.sound.buttonState();
    const b = $("sound");
    b.textContent = state === "blocked" ? t("sound_blocked") : state === "muted" ? t("sound_muted", { t: left }) : t("sound_on");
    b.classList.toggle("warn", state !== "on");
  }

  function renderAccess() {
    const role = st.role;
    $("console").hidden = role === null;
    $("logout").hidden = role !== "operator";
    $("login-open").hidden = role !== "display";
    $("user").textContent = role === "operator" ? st.user : role === "display" ? t("wall") : "";
    $("access").hidden = role === "operator";
    $("access").className = "access " + (role === "display" ? "display" : "blind");
    if (role === "display") $("access-text").textContent = t("display_only");
    $("login-title").textContent = role === "display" ? t("login_title") : t("login_title_blind");
    if (role === null) {
      const n = D.untaken().length;
      $("access-text").textContent = t("must_login") + (n ? " — " + t("must_login_open", { n }) : "");
      $("login").hidden = false;
    }
    if (role === "operator") $("login").hidden = true;
  }

  // -- the link to the gateway --------------------------------------------------------------
  function linkOk() {
    link.troubleSince = 0;
    if (link.lost) { link.lost = false; renderLink(); }
  }

  function linkTrouble(immediately) {
    if (!link.troubleSince) link.troubleSince = Date.now() - (immediately ? LOST_GRACE_MS : 0);
  }

  function renderLink() {
    $("banner").hidden = !link.lost;
    document.body.classList.toggle("offline", link.lost);
  }

  function connect() {
    dropStream();
    const es = new EventSource("/api/stream");
    link.es = es;
    link.lastMessage = Date.now();
    const on = (name, fn) => es.addEventListener(name, (e) => {
      link.lastMessage = Date.now();
      linkOk();
      fn(JSON.parse(e.data));
    });
    on("snapshot", applySnapshot);
    on("alarm", (d) => { putAlarm(d); render(); });
    on("device", (d) => { st.devices.set(d.device, d); D.panels.renderDevices(); });
    on("event", (d) => { D.panels.addEvent(d); D.panels.renderDevices(); D.panels.renderHistory(); });
    on("health", (d) => { D.syncClock(d.now); st.health = d.health; D.panels.renderHealth(); });
    on("ping", (d) => D.syncClock(d.now));
    on("expired", () => { dropStream(); loggedOut(t("session_expired")); });
    es.onerror = () => {
      linkTrouble(false);
      if (es.readyState === EventSource.CLOSED) { dropStream(); probeSoon(); }
    };
  }

  function dropStream() {
    if (link.es) link.es.close();
    link.es = null;
  }

  function probeSoon(ms) {
    clearTimeout(link.probeTimer);
    link.probeTimer = setTimeout(probe, ms == null ? 1000 : ms);
  }

  /* Who am I to the gateway now? Then stream accordingly. */
  async function probe() {
    let res;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), PROBE_TIMEOUT_MS);
    try {
      res = await fetch("/api/session", { credentials: "same-origin", cache: "no-store", signal: abort.signal });
    } catch (e) {
      linkTrouble(false);
      probeSoon();
      return;
    } finally {
      clearTimeout(timer);
    }
    const body = await res.json().catch(() => ({}));
    if (res.ok) {
      setRole("operator", body);
    } else if (body.display) {
      setRole("display", {});
    } else {
      linkOk(); // the gateway answered: the link is fine, the page is not allowed to see
      setRole(null, {});
      $("login-note").textContent = body.accounts === 0 ? t("no_accounts") : "";
    }
  }

  function setRole(role, body) {
    st.role = role;
    st.user = role === "operator" ? body.name : null;
    st.csrf = role === "operator" ? body.csrf : null;
    if (role === "display") $("login").hidden = true;
    renderAccess();
    render();
    if (role === null) dropStream();
    else connect();
  }

  function loggedOut(note) {
    st.user = null;
    st.csrf = null;
    $("login-note").textContent = note || "";
    probe();
  }

  function watchdog() {
    if (link.es && Date.now() - link.lastMessage > STALE_MS) {
      linkTrouble(true);
      dropStream();
      probeSoon(0);
    }
    if (link.troubleSince && !link.lost && Date.now() - link.troubleSince >= LOST_GRACE_MS) {
      link.lost = true;
      renderLink();
      D.sound.alert("lost");
    }
  }

  // -- login --------------------------------------------------------------------------------
  async function submitLogin(ev) {
    ev.preventDefault();
    D.sound.unlock();
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
      linkTrouble(false);
      $("login-error").textContent = t("lost");
      return;
    }
    const body = await res.json().catch(() => ({}));
    $("login-password").value = "";
    if (res.ok) {
      $("login-note").textContent = "";
      setRole("operator", body);
    } else if (res.status === 429) {
      $("login-error").textContent = t("login_throttled", { s: res.headers.get("Retry-After") || "?" });
    } else if (res.status === 503) {
      $("login-error").textContent = t("login_busy");
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
    } catch (e) { /* the session ends on the gateway anyway when it expires */ }
    loggedOut("");
  }

  // -- state --------------------------------------------------------------------------------
  function applySnapshot(d) {
    D.syncClock(d.now);
    st.site = d.site;
    st.dayStart = D.parseTs(d.day_start);
    st.health = d.health;
    const first = st.known === null;
    if (first) st.known = new Set();
    st.alarms.clear();
    d.alarms.forEach((a) => putAlarm(a, first));
    st.devices.clear();
    d.devices.forEach((dev) => st.devices.set(dev.device, dev));
    st.events.clear();
    st.reasons.clear();
    d.history.forEach(D.panels.addEvent);
    applyTexts();
  }

  /* An alarm document arrived; a new open alarm flashes the page and sounds at once. */
  function putAlarm(a, quiet) {
    if (a.deleted) { st.alarms.delete(a.id); return; }
    const before = st.alarms.get(a.id);
    if (before && a.urgency === undefined) a = { ...a, urgency: before.urgency, police_due_at: before.police_due_at };
    const isNew = !st.known.has(a.id);
    st.known.add(a.id);
    st.alarms.set(a.id, a);
    if (isNew && !quiet && D.isOpen(a)) {
      flash();
      D.sound.alert(D.isCritical(a) ? "critical" : "alarm");
    }
  }

  function flash() {
    document.body.classList.remove("flash");
    void document.body.offsetWidth; // restart the animation
    document.body.classList.add("flash");
  }

  // -- rendering ----------------------------------------------------------------------------
  function render() {
    if (st.known === null) return;
    $("site-name").textContent = st.site.name || t("title");
    renderAlarms();
    D.panels.renderDevices();
    D.panels.renderHealth();
    D.panels.renderHistory();
  }

  function renderAlarms() {
    const list = D.openAlarms();
    const box = $("alarms");
    const keep = new Set(list.map((a) => a.id));
    for (const [id, card] of cards) {
      if (!keep.has(id)) { card.remove(); cards.delete(id); }
    }
    list.forEach((a, i) => {
      let card = cards.get(a.id);
      if (!card) { card = D.cards.build(a.id); cards.set(a.id, card); }
      if (box.children[i] !== card) box.insertBefore(card, box.children[i] || null);
      D.cards.fill(card, a);
    });
    $("alarm-count").textContent = String(list.length);
    $("no-alarms").hidden = list.length > 0;
    const untaken = D.untaken();
    document.body.classList.toggle("alarming", untaken.length > 0);
    document.body.classList.toggle("critical", untaken.some(D.isCritical));
  }

  function tick() {
    $("clock").textContent = st.known === null ? "" : D.clockText(D.now(), true);
    for (const [id, card] of cards) {
      const a = st.alarms.get(id);
      if (!a) continue;
      card.querySelector(".ago").textContent = D.agoText(D.parseTs(a.raised_at));
      const [text, cls] = D.cards.policeState(a);
      card.querySelector(".police-state").textContent = text;
      card.querySelector(".police").className = "police " + cls;
    }
    watchdog();
    const untaken = D.untaken();
    D.sound.tick({ lost: link.lost, critical: untaken.some(D.isCritical), alarm: untaken.length > 0 });
    renderSoundButton();
    if (st.role === null) renderAccess();
  }

  // -- start --------------------------------------------------------------------------------
  Object.assign(D, { render, putAlarm, loggedOut, renderSoundButton });
  $("login-form").addEventListener("submit", submitLogin);
  $("logout").addEventListener("click", logout);
  $("login-open").addEventListener("click", () => {
    $("login").hidden = !$("login").hidden;
    if (!$("login").hidden) $("login-name").focus();
  });
  $("lang").addEventListener("click", () => {
    st.lang = st.lang === "vi" ? "en" : "vi";
    localStorage.setItem("alarmgw.lang", st.lang);
    applyTexts();
  });
  $("sound").addEventListener("click", () => { D.sound.toggleMute(); renderSoundButton(); });
  document.addEventListener("click", D.sound.unlock, { capture: true });
  document.addEventListener("keydown", D.sound.unlock, { capture: true });
  document.body.addEventListener("animationend", (e) => {
    if (e.target === document.body) document.body.classList.remove("flash");
  });
  D.sound.unlock();
  applyTexts();
  setInterval(tick, 1000);
  probe();
})();
