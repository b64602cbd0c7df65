/* Alarm cards: what happened where, who has taken it, what the police know, and the three
   deliberate actions. "Nhận xử lý" (take, the SPEC's ack) works in every open state;
   "Báo công an ngay" needs a second tap within ARM_MS; "Kết thúc" opens a panel that needs
   an outcome (a common one or a note) and, when the police have been called, says so. */
"use strict";

(function () {
  const D = window.Desk;
  const { t, el, st } = D;
  const ARM_MS = 5000;
  const OUTCOMES = ["false_alarm", "handled", "police_handled", "left"];

  const live = (a) => (a.escalations || []).filter((e) => e.status !== "superseded" && e.status !== "standby");
  const policeBusy = (a) => {
    const l = live(a);
    return l.length > 0 && !l.some((e) => e.status === "delivered") && !l.every((e) => e.status === "failed");
  };
  const policeCalled = (a) => ["escalated", "police_acknowledged"].includes(a.state)
    || live(a).some((e) => e.status !== "failed");
  const lastHistory = (a, state) => [...(a.history || [])].reverse().find((h) => h.state === state);

  /* The police line of a card: [text, css class]. First rule that matches wins; the police
     receiver's states ("Công an đã nhận — <officer>", "Công an đã đến") go at the top. */
  function policeState(a) {
    const l = live(a);
    const delivered = l.filter((e) => e.status === "delivered");
    for (const [state, key] of [["closed", "police_closed"], ["on_scene", "police_on_scene"]]) {
      const h = lastHistory(a, state);
      if (h) return [t(key, { by: D.who(h.by) }).replace(/ — $/, ""), "p-ack"];
    }
    if (a.state === "police_acknowledged") {
      const h = lastHistory(a, "police_acknowledged");
      return [t("police_ack", { by: h ? D.who(h.by) : "" }).replace(/ — $/, ""), "p-ack"];
    }
    if (delivered.length || a.state === "escalated") {
      const via = [...new Set(delivered.map((e) => D.channel(e.channel, e.target)))].join(", ");
      const at = delivered.map((e) => D.parseTs(e.delivered_at)).filter((x) => !Number.isNaN(x)).sort()[0];
      return [t("police_sent", { c: via || "✓", t: at ? D.clockText(at, false) : "" }), "p-sent"];
    }
    if (l.length && l.every((e) => e.status === "failed")) {
      const p = D.policePhone();
      return [p ? t("police_failed_phone", { p }) : t("police_failed"), "p-failed"];
    }
    if (l.length) return [t("police_sending"), "p-sending"];
    const due = D.parseTs(a.police_due_at);
    if (!Number.isNaN(due) && a.state === "raised") {
      return due > D.now() ? [t("police_due", { t: D.countdown(due) }), "p-due"] : [t("police_due_now"), "p-due"];
    }
    if (a.state === "acknowledged") return [t("police_not_needed"), "p-none"];
    return [t("police_none"), "p-none"];
  }

  function build(id) {
    const card = el("article", "alarm");
    card.dataset.id = id;
    const head = el("div", "alarm-head");
    head.append(el("span", "type"), el("span", "drill"), el("span", "code"));
    const where = el("div", "where");
    where.append(el("span", "room"), el("span", "ward"));
    const facts = el("div", "facts");
    facts.append(el("span", "ago"), el("span", "device"), el("span", "presses"));
    const police = el("div", "police");
    police.append(el("span", "police-label"), el("span", "police-state"));
    const actions = el("div", "actions");
    ["ack", "escalate", "resolve"].forEach((action) => {
      const b = el("button", "action " + action);
      b.type = "button";
      b.dataset.action = action;
      b.addEventListener("click", () => onAction(card, action));
      actions.append(b);
    });
    const result = el("p", "result");
    result.setAttribute("role", "status");
    card.append(head, where, facts, el("div", "taken"), police, actions, buildResolve(card), result);
    return card;
  }

  function buildResolve(card) {
    const panel = el("div", "resolve-panel");
    panel.hidden = true;
    const list = el("div", "outcomes");
    [...OUTCOMES, "drill_done"].forEach((key) => {
      const b = el("button", "outcome");
      b.type = "button";
      b.dataset.outcome = key;
      b.addEventListener("click", () => {
        list.querySelectorAll(".outcome").forEach((x) => x.classList.toggle("chosen", x === b));
        panel.querySelector(".resolve-warn").textContent = "";
      });
      list.append(b);
    });
    const note = el("input", "note");
    note.type = "text";
    note.maxLength = 400;
    const buttons = el("div", "resolve-buttons");
    const confirm = el("button", "action confirm-resolve");
    confirm.type = "button";
    confirm.addEventListener("click", () => confirmResolve(card));
    const cancel = el("button", "action cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => { panel.hidden = true; });
    buttons.append(confirm, cancel);
    panel.append(el("p", "resolve-title"), list, note, el("p", "police-warning"), el("p", "resolve-warn"), buttons);
    return panel;
  }

  function fill(card, a) {
    const q = (s) => card.querySelector(s);
    const info = D.deviceInfo(a.device);
    const critical = D.isCritical(a);
    const taken = D.isTaken(a);
    card.className = "alarm state-" + a.state + (critical ? " critical" : "") + (taken ? " taken" : " untaken")
      + (a.drill ? " is-drill" : "") + (card.classList.contains("busy") ? " busy" : "");
    q(".type").textContent = t("types." + a.type);
    q(".drill").textContent = a.drill ? t("drill") : "";
    q(".code").textContent = t("code") + " " + a.code;
    q(".room").textContent = a.room || info.room || "";
    q(".ward").textContent = D.wardName(a.ward);
    q(".ago").textContent = D.agoText(D.parseTs(a.raised_at));
    q(".device").textContent = info.name || a.device;
    q(".presses").textContent = a.press_count > 1 ? t("presses", { n: a.press_count }) : "";
    q(".taken").textContent = taken
      ? t("taken", { by: D.who(a.taken_by), t: D.clockText(D.parseTs(a.taken_at), false) }) : t("untaken");
    q(".police-label").textContent = t("police") + ": ";
    const [policeText, policeClass] = policeState(a);
    q(".police-state").textContent = policeText;
    q(".police").className = "police " + policeClass;
    const operator = st.role === "operator";
    q(".actions").hidden = !operator;
    card.querySelectorAll("button.action[data-action]").forEach((b) => {
      const armed = b.dataset.armed && Number(b.dataset.armed) > Date.now();
      const again = b.dataset.action === "escalate" && policeCalled(a);
      b.textContent = armed ? t("escalate_confirm") : t(again ? "escalate_again" : b.dataset.action);
      b.classList.toggle("armed", !!armed);
      b.disabled = card.classList.contains("busy") || !allowed(a, b.dataset.action);
    });
    fillResolve(card, a);
    if (!operator) q(".resolve-panel").hidden = true;
  }

  function fillResolve(card, a) {
    const panel = card.querySelector(".resolve-panel");
    panel.querySelector(".resolve-title").textContent = t("resolve_title");
    panel.querySelectorAll(".outcome").forEach((b) => {
      b.textContent = t("outcomes." + b.dataset.outcome);
      b.hidden = b.dataset.outcome === "drill_done" && !a.drill;
    });
    panel.querySelector(".note").placeholder = t("outcome_note");
    const called = policeCalled(a);
    panel.querySelector(".police-warning").textContent = called ? t("resolve_police_warning") : "";
    panel.querySelector(".confirm-resolve").textContent = called ? t("resolve_confirm_police") : t("resolve_confirm");
    panel.querySelector(".confirm-resolve").classList.toggle("police-called", called);
    panel.querySelector(".cancel").textContent = t("cancel");
  }

  function allowed(a, action) {
    if (!D.isOpen(a)) return false;
    if (action === "escalate") return a.state !== "police_acknowledged" && !policeBusy(a);
    return true;
  }

  function onAction(card, action) {
    D.sound.unlock();
    const a = st.alarms.get(card.dataset.id);
    if (!a) return;
    const button = card.querySelector(`button[data-action=${action}]`);
    if (action === "resolve") {
      const panel = card.querySelector(".resolve-panel");
      panel.hidden = !panel.hidden;
      if (!panel.hidden) panel.querySelector(".outcome:not([hidden])").focus();
      return;
    }
    if (action === "escalate" && !(Number(button.dataset.armed) > Date.now())) {
      button.dataset.armed = String(Date.now() + ARM_MS); // the first tap only arms it
      fill(card, a);
      setTimeout(() => { if (st.alarms.has(a.id)) fill(card, st.alarms.get(a.id)); }, ARM_MS + 50);
      return;
    }
    delete button.dataset.armed;
    send(card, action, {});
  }

  function confirmResolve(card) {
    const panel = card.querySelector(".resolve-panel");
    const chosen = panel.querySelector(".outcome.chosen");
    const extra = panel.querySelector(".note").value.trim();
    const note = [chosen ? chosen.textContent : "", extra].filter(Boolean).join(" — ");
    if (!note) {
      panel.querySelector(".resolve-warn").textContent = t("resolve_pick");
      return;
    }
    const a = st.alarms.get(card.dataset.id);
    send(card, "resolve", { note, confirm: !!(a && policeCalled(a)) });
  }

  async function send(card, action, body) {
    const id = card.dataset.id;
    const result = card.querySelector(".result");
    card.classList.add("busy");
    result.className = "result";
    result.textContent = t("sending");
    fill(card, st.alarms.get(id));
    let res, answer;
    try {
      res = await fetch("/api/alarms/" + encodeURIComponent(id) + "/command", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": st.csrf || "" },
        body: JSON.stringify({ action, ...body }),
      });
      answer = await res.json().catch(() => ({}));
    } catch (e) {
      res = null;
      answer = { error: t("lost") };
    }
    card.classList.remove("busy");
    if (res && res.status === 401) { D.loggedOut(t("session_expired")); return; }
    if (res && res.ok && answer.ok) {
      result.textContent = t("done_" + action);
      result.className = "result ok";
      card.querySelector(".resolve-panel").hidden = true;
      /* answer.alarm is not shown: it is the alarm as of the command, and the stream may
         have brought a newer state already (the police called within milliseconds); the
         stream carries every change in commit order, this command's included. */
    } else {
      result.textContent = t("failed", { e: answer.error || (res ? res.status : "?") });
      result.className = "result err";
    }
    D.render();
  }

  Object.assign(D, { cards: { build, fill, policeState } });
})();
