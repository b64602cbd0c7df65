/* People, not ids: how the desk names who did something. The journal records origins such
   as "device:exam-room-3", "http:https://…/alarm", "sms:+84912000113",
   "police:+84912000113" or "policy:unacknowledged_after"; a guard reads "Nút phòng khám 3
   (Phòng khám 3)", "Đường dây nóng công an", "SMS 0912 000 113", "Công an (0912 000 113)",
   "Tự động (quá thời gian chờ)". An operator's name is shown as it is. */
"use strict";

(function () {
  const { t, st } = window.Desk;

  /* A phone number as people write it: +84912000113 → 0912 000 113. */
  function phone(number) {
    let n = String(number || "").replace(/[\s.-]/g, "");
    if (/^\+84\d{9,10}$/.test(n)) n = "0" + n.slice(3);
    if (/^0\d{9}$/.test(n)) return n.slice(0, 4) + " " + n.slice(4, 7) + " " + n.slice(7);
    if (/^0\d{10}$/.test(n)) return n.slice(0, 4) + " " + n.slice(4, 7) + " " + n.slice(7);
    return String(number || "");
  }

  function device(id) {
    const info = window.Desk.deviceInfo(id);
    const room = info.room || "";
    if (info.name && room && !info.name.includes(room)) return t("who.device_in", { name: info.name, room });
    return info.name || room || id;
  }

  /* The channel an escalation went out on, by name. */
  function channel(name, target) {
    if (name === "http") return t("who.hotline");
    if (name === "sms") return t("who.sms", { n: phone(target) });
    return name;
  }

  const AUTOMATIC = {
    "policy:unacknowledged_after": "who.auto_timer",
    "policy.hold": "who.auto_duress",
    "policy.mass_alarm": "who.auto_mass",
    "policy:reminder": "who.auto_reminder",
    timer: "who.auto_timer",
    drill: "who.drill",
  };

  /* Who did it, from an alarm history's or an event's "by". */
  function who(by) {
    if (!by) return "";
    const text = String(by);
    if (AUTOMATIC[text]) return t(AUTOMATIC[text]);
    if (/^policy[.:]/.test(text)) return t("who.auto_policy");
    const colon = text.indexOf(":");
    const kind = colon > 0 ? text.slice(0, colon) : "";
    const rest = colon > 0 ? text.slice(colon + 1) : text;
    if (kind === "device") return device(rest);
    if (kind === "http") return t("who.hotline");
    if (kind === "sms") return t("who.sms", { n: phone(rest) });
    if (kind === "police") {
      return /^\+?\d[\d\s]{5,}$/.test(rest) ? t("who.police_number", { n: phone(rest) })
                                            : t("who.police_officer", { n: rest });
    }
    if (kind === "console") return rest;
    return text;
  }

  /* The police number to phone when calling them by the gateway failed, or "". */
  const policePhone = () => phone((st.site.police_numbers || [])[0] || "");

  Object.assign(window.Desk, { phone, device, channel, who, policePhone });
})();
