/* The panels under the alarms: devices, the system's health and today's log, all naming
   people, rooms and channels rather than ids (names.js). */
"use strict";

(function () {
  const D = window.Desk;
  const { t, el, st, $ } = D;
  const DEVICE_REASONS = ["tamper", "tamper_ok", "low_battery", "supervision_lost", "supervision_restored"];
  const HIDDEN_EVENTS = ["alarm_state", "press", "hold", "escalation_attempt"];

  function addEvent(e) {
    if (st.events.has(e.id)) return;
    st.events.set(e.id, e);
    if (!e.device || !DEVICE_REASONS.includes(e.type)) return;
    const r = st.reasons.get(e.device) || {};
    if (e.type === "tamper") r.tamper = true;
    if (e.type === "tamper_ok") r.tamper = false;
    if (e.type === "low_battery") r.low_battery = true;
    if (e.type === "supervision_lost") r.supervision_lost = true;
    if (e.type === "supervision_restored") r.supervision_lost = false;
    st.reasons.set(e.device, r);
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
      const info = D.deviceInfo(id);
      const li = el("li", "device-row dev-" + d.state);
      li.dataset.device = id;
      li.append(el("span", "dev-state", t("device_states." + d.state)));
      li.append(el("span", "dev-name", (info.name || id) + " — " + (d.room || info.room || "") + ", " + D.wardName(d.ward || info.ward)));
      const extra = [];
      const r = st.reasons.get(id) || {};
      if (d.state !== "normal" && d.state !== "alarm") {
        Object.keys(r).filter((k) => r[k]).forEach((k) => extra.push(t("reasons." + k)));
      }
      if (d.battery_mv) extra.push(t("battery", { mv: d.battery_mv }));
      if (d.last_seen) extra.push(t("last_seen", { t: D.clockText(D.parseTs(d.last_seen), false) }));
      li.append(el("span", "dev-extra", extra.join(" · ")));
      ul.append(li);
    }
  }

  function partOk(v) {
    if (!v || typeof v !== "object") return true;
    if (v.connected === false || v.listening === false) return false;
    return !(v.error || v.state === "trouble" || v.state === "failed");
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
    const hours = Math.floor(up / 3600), minutes = Math.floor((up % 3600) / 60);
    row(t("uptime"), up < 60 ? t("uptime_fresh")
      : hours ? t("uptime_value", { h: hours, m: minutes }) : t("uptime_minutes", { m: minutes }));
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

  function alarmLines() {
    const lines = [];
    for (const a of st.alarms.values()) {
      const where = (a.room || "") + " · " + D.wardName(a.ward) + " (" + t("code") + " " + a.code + ")";
      for (const h of a.history || []) {
        const ms = D.parseTs(h.ts);
        if (ms < st.dayStart) continue;
        const take = h.action === "ack" && h.state !== "acknowledged";
        const what = take ? t("history_take")
          : h.action === "reminder" ? t("history_reminder", { n: (h.round || 2) - 1 })
          : t("history_states." + h.state);
        lines.push({ ms, kind: "alarm", what: what + (h.note ? ": " + h.note : ""), where,
                     by: D.who(h.by), drill: a.drill });
      }
    }
    return lines;
  }

  function eventLines() {
    const lines = [];
    for (const e of st.events.values()) {
      if (HIDDEN_EVENTS.includes(e.type)) continue;
      const info = D.deviceInfo(e.device);
      const where = e.device ? (e.room || info.room || "") + " · " + D.wardName(e.ward || info.ward) : "";
      const detail = e.detail || {};
      let by = detail.by ? D.who(detail.by) : "";
      if (e.type === "police_reply" && detail.from) by = D.who("police:" + detail.from);
      let what = t("events." + e.type);
      if (e.type === "rejected_command" && detail.reason) what += ": " + detail.reason;
      if (e.type === "login_failed" && detail.user) what += ": " + detail.user;
      lines.push({ ms: D.parseTs(e.ts), kind: e.type, what, where, by, drill: e.drill });
    }
    return lines;
  }

  function renderHistory() {
    if (st.known === null) return;
    const ol = $("history");
    ol.replaceChildren();
    const lines = [...alarmLines(), ...eventLines()].sort((x, y) => y.ms - x.ms).slice(0, 300);
    for (const line of lines) {
      const li = el("li", "h-" + line.kind);
      li.append(el("time", "h-time", D.clockText(line.ms, true)));
      li.append(el("span", "h-what", line.what + (line.drill ? " [" + t("drill") + "]" : "")));
      if (line.where) li.append(el("span", "h-where", line.where));
      if (line.by) li.append(el("span", "h-by", t("by", { by: line.by })));
      ol.append(li);
    }
    $("no-history").hidden = lines.length > 0;
  }

  Object.assign(D, { panels: { addEvent, renderDevices, renderHealth, renderHistory } });
})();
