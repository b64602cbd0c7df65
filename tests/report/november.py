"""November 2026 at a test hospital, scripted: what the report must find.

Real alarms (11): A1 panic, A2 duress button, A3 exam-ward panic the desk missed (police
by timer, never acknowledged by them), A4 a door (taken by the desk, never sent), A5 a
panic during a hotline outage, A6 a mass alarm (3 in 20 s), A7 a held button (duress),
A8 a serial node's panic taken at once, A9 a panic on the 30th resolved on 1 December.
Drills: 2 in the emergency ward, 1 in the exam ward, none in internal medicine. An alarm
of 31 October belongs to October. Faults: node kb-2 offline 2.5 h, node cc-3 low battery,
tamper and offline from the 27th to the end; a 20-minute broker outage; two restarts;
the periodic test missed on the 16th and 17th; one malformed command.
"""

from __future__ import annotations

from typing import Any

from gateway.core.events import EventType
from report.month_rig import MonthRig, at


async def november(rig: MonthRig) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    await _october(rig)
    october_parts = sum(m.parts for m in rig.modem_sim.sent_messages())
    for day in range(1, 31):
        if day not in (16, 17):
            rig.to(at(day, 0, 30))
            await rig.periodic_test()
        await DAYS.get(day, _nothing)(rig, ids)
    await _first_of_december(rig, ids)
    ids["sms_parts"] -= october_parts
    return ids


async def _nothing(rig: MonthRig, ids: dict[str, Any]) -> None:
    return None


async def _october(rig: MonthRig) -> None:
    rig.to(at(31, 23, 30, month=10))
    old = await rig.press("cc-1")
    rig.to(at(1, 0, 5))
    await rig.command(old, "resolve", note="tháng trước")


async def _full(rig: MonthRig, device: str, t0: float, ack: float, police: float | None,
                resolve: float | None, note: str = "") -> str:
    """Press at t0; desk ack, police OK and resolve at t0 + the given seconds."""
    rig.to(t0)
    alarm = await rig.press(device)
    steps = sorted([(ack, "ack"), (police, "police"), (resolve, "resolve")],
                   key=lambda s: s[0] if s[0] is not None else 1e12)
    for offset, what in steps:
        if offset is None:
            continue
        rig.to(t0 + offset)
        if what == "police":
            await rig.police_ok(alarm)
        else:
            await rig.command(alarm, what, note=note if what == "resolve" else "")
    return alarm


async def _d2(rig: MonthRig, ids: dict[str, Any]) -> None:
    ids["A1"] = await _full(rig, "cc-1", at(2, 9), 30, 90, 900,
                            "Người nhà bệnh nhân gây rối, đã mời ra ngoài")


async def _d3(rig: MonthRig, ids: dict[str, Any]) -> None:
    ids["A2"] = await _full(rig, "cc-2", at(3, 22, 10), 20, 60, 1200)


async def _d5(rig: MonthRig, ids: dict[str, Any]) -> None:
    t0 = at(5, 10)
    rig.to(t0)
    alarm = ids["A3"] = await rig.press("kb-1")
    rig.to(t0 + 120)  # nobody took it: the police timer fires
    for draft in rig.engine.on_timer(rig.clock.wall()):
        await rig.recorder.record(draft)
    await rig.settled(alarm)
    rig.to(t0 + 150)
    await rig.command(alarm, "ack")
    rig.to(t0 + 1800)
    await rig.command(alarm, "resolve", note="Bấm nhầm")


async def _d7(rig: MonthRig, ids: dict[str, Any]) -> None:
    t0 = at(7, 14)
    rig.to(t0)
    alarm = ids["A4"] = await rig.input("kb-door", EventType.OPEN)
    rig.to(t0 + 5)
    await rig.input("kb-door", EventType.CLOSE)
    rig.to(t0 + 40)
    await rig.command(alarm or "", "ack")
    rig.to(t0 + 300)
    await rig.command(alarm or "", "resolve", note="Nhân viên kho quên khóa cửa")


async def _d8(rig: MonthRig, ids: dict[str, Any]) -> None:
    rig.to(at(8, 3))
    await rig.offline("kb-2", 7, lost=True)
    rig.to(at(8, 5, 30))
    await rig.offline("kb-2", 7, lost=False)


async def _d10(rig: MonthRig, ids: dict[str, Any]) -> None:
    """Hotline answers 500 three times: a round of 2 attempts fails (trouble), 30 s
    pause, then 500 and 200. The SMS go out meanwhile."""
    rig.hotline.fail(500, times=3)
    t0 = at(10, 8)
    rig.to(t0)
    alarm = ids["A5"] = await rig.press("cc-1")
    for offset, what in ((100, "ack"), (200, "police"), (1500, "resolve")):
        rig.to(t0 + offset)
        if what == "police":
            await rig.police_ok(alarm)
        else:
            await rig.command(alarm, what, note="Bệnh nhân say rượu" if what == "resolve" else "")


async def _d12(rig: MonthRig, ids: dict[str, Any]) -> None:
    for device, t0, police, resolve in (("cc-1", at(12, 9), 45, 300),
                                        ("kb-1", at(12, 9, 30), 60, 400)):
        rig.to(t0)
        drill = await rig.drill_alarm(device)
        rig.to(t0 + police)
        await rig.police_ok(drill)
        rig.to(t0 + resolve)
        await rig.command(drill, "resolve", note="Diễn tập định kỳ")
    rig.to(at(12, 9, 40))
    await rig.command("no-such-alarm", "ack")  # rejected, journaled


async def _d14(rig: MonthRig, ids: dict[str, Any]) -> None:
    t0 = at(14, 19)
    members = []
    for device, offset in (("kb-1", 0), ("kb-2", 10), ("kb-door", 20)):
        rig.to(t0 + offset)
        kind = EventType.OPEN if device == "kb-door" else EventType.PRESS
        members.append(await rig.input(device, kind))
    for alarm in members:
        await rig.settled(alarm or "")
    ids["A6"] = members
    rig.to(t0 + 60)
    for alarm in members:
        await rig.command(alarm or "", "ack")
    rig.to(t0 + 120)
    await rig.police_ok(members[0] or "")
    rig.to(t0 + 1800)
    for alarm in members:
        await rig.command(alarm or "", "resolve", note="Đám đông gây rối ở phòng khám")


async def _d15(rig: MonthRig, ids: dict[str, Any]) -> None:
    rig.to(at(15, 11))
    await rig.input("cc-3", EventType.LOW_BATTERY, value=2480,
                    detail={"node": 3, "threshold_mv": 2600})


async def _d16(rig: MonthRig, ids: dict[str, Any]) -> None:
    rig.to(at(16, 4))
    await rig.restart()


async def _d18(rig: MonthRig, ids: dict[str, Any]) -> None:
    t0 = at(18, 2, 30)
    rig.to(t0)
    alarm = ids["A7"] = await rig.press("cc-1")
    rig.to(t0 + 3)
    await rig.input("cc-1", EventType.HOLD, value=3)
    for offset, what in ((30, "ack"), (60, "police"), (1200, "resolve")):
        rig.to(t0 + offset)
        if what == "police":
            await rig.police_ok(alarm)
        else:
            await rig.command(alarm, what, note="Bị đe dọa, công an đã đến" if what == "resolve" else "")


async def _d20(rig: MonthRig, ids: dict[str, Any]) -> None:
    rig.to(at(20, 10))
    await rig.input("cc-3", EventType.TAMPER, detail={"node": 3})
    rig.to(at(20, 10, 5))
    await rig.input("cc-3", EventType.TAMPER_OK, detail={"node": 3})


async def _d21(rig: MonthRig, ids: dict[str, Any]) -> None:
    ids["A8"] = await _full(rig, "kb-2", at(21, 11), 15, None, 200, "Thử nút sau khi thay pin")


async def _d22(rig: MonthRig, ids: dict[str, Any]) -> None:
    rig.to(at(22, 13))
    await rig.health(mqtt_backlog=500)
    rig.to(at(22, 13, 20))
    await rig.health(mqtt_backlog=0)


async def _d24(rig: MonthRig, ids: dict[str, Any]) -> None:
    rig.to(at(24, 4))
    await rig.restart()


async def _d26(rig: MonthRig, ids: dict[str, Any]) -> None:
    t0 = at(26, 9)
    rig.to(t0)
    drill = await rig.drill_alarm("cc-2")
    rig.to(t0 + 600)
    await rig.command(drill, "resolve", note="Diễn tập, công an không trả lời")


async def _d27(rig: MonthRig, ids: dict[str, Any]) -> None:
    rig.to(at(27, 22))
    await rig.offline("cc-3", 3, lost=True)


async def _d30(rig: MonthRig, ids: dict[str, Any]) -> None:
    t0 = at(30, 23, 50)
    rig.to(t0)
    alarm = ids["A9"] = await rig.press("cc-1")
    rig.to(t0 + 45)
    await rig.command(alarm, "ack")
    rig.to(t0 + 80)
    await rig.police_ok(alarm)


async def _first_of_december(rig: MonthRig, ids: dict[str, Any]) -> None:
    rig.to(at(30, 23, 50) + 1800)
    await rig.command(ids["A9"], "resolve", note="Đã giải quyết sau nửa đêm")
    # what the phones received in November, part by part (the operator's bill)
    ids["sms_parts"] = sum(m.parts for m in rig.modem_sim.sent_messages())
    rig.to(at(1, 6, month=12))
    await rig.press("cc-1")  # December's: not in November's report


DAYS = {2: _d2, 3: _d3, 5: _d5, 7: _d7, 8: _d8, 10: _d10, 12: _d12, 14: _d14, 15: _d15,
        16: _d16, 18: _d18, 20: _d20, 21: _d21, 22: _d22, 24: _d24, 26: _d26, 27: _d27,
        30: _d30}
