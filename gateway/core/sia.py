"""The SIA DC-03 event codes and the gateway's default mapping onto them (SPEC §7).

Plain data, in the core so that both ``check-config`` (:mod:`gateway.config.checks`) and
the DC-09 channel (:mod:`gateway.escalation.dc09.codes`) read the same table.
"""

from __future__ import annotations

from typing import Any

#: The SIA DC-03 event codes (two letters each), as receivers know them.
KNOWN_CODES = frozenset("""
AA AB AF AN AR AS AT BA BB BC BD BE BG BH BJ BM BR BS BT BU BV BX BZ CA CB CC CD CE CF CG CI
CJ CK CL CM CO CP CQ CR CS CT CW CX CZ DA DB DC DD DE DF DG DH DI DJ DK DL DM DN DO DP DQ DR
DS DT DU DV DW DX DY DZ EA EE EJ EM EN ER ES ET EX EZ FA FB FC FG FH FI FJ FK FL FM FQ FR FS
FT FU FV FW FX FY FZ GA GB GH GJ GR GS GT GU GX HA HB HH HJ HR HS HT HU IA IR JA JC JD JH JK
JL JO JP JR JS JT JV JX JY JZ KA KB KH KJ KR KS KT KU LB LD LE LF LR LS LT LU LX MA MB MH MI
MJ MR MS MT MU NA NB NC ND NE NF NL NM NO NP NR NS NT OA OB OC OG OH OI OJ OK OL OP OQ OR OS
OT OU OV OZ PA PB PC PD PE PF PG PH PJ PO PR PS PT PU QA QB QH QJ QR QS QT QU RA RB RC RD RN
RO RP RR RS RT RU RX RY SA SB SC SH SJ SM SR SS ST SU TA TB TC TE TH TJ TP TR TS TT TU TW TX
TZ UA UB UG UH UJ UR US UT UU UX UY UZ VI VO VR VT VX VY VZ WA WB WH WJ WR WS WT WU XA XC XE
XF XH XI XJ XL XM XQ XR XS XT XW XX YA YB YC YD YE YF YG YH YI YJ YK YM YN YO YP YQ YR YS YT
YU YW YX YY YZ ZA ZB ZH ZJ ZR ZS ZT ZU ZY ZZ""".split())

#: Our events and the DC-03 code each is sent as, unless the site maps it otherwise.
DEFAULT_CODES: dict[str, str] = {
    "panic": "PA", "panic_restore": "PR",  # panic alarm / its restoral
    "duress": "HA", "duress_restore": "HR",  # hold-up (duress) alarm
    "intrusion": "BA", "intrusion_restore": "BR",  # a sensor's alarm
    "door": "BA", "door_restore": "BR",  # a door contact's alarm
    "drill": "RX",  # a drill alarm: a manual test, never a real alarm at the centre
    "tamper": "TA", "tamper_restore": "TR",
    "low_battery": "XT", "battery_restore": "XR",  # a node's (transmitter's) battery
    "supervision_lost": "EM", "supervision_restored": "EN",  # a node gone silent / back
    "comm_trouble": "YS", "comm_trouble_restore": "YK",  # hotline, modem, a DC-09 link
    "trouble": "IA", "trouble_restore": "IR",  # any other trouble of the gateway
    "periodic_test": "RP",
}

COMM_SOURCES = ("hotline", "modem", "dc09")


def code_problems(mapping: dict[str, Any]) -> list[tuple[str, str]]:
    """``(key, reason)`` for every entry of a site's code mapping that cannot be used."""
    out: list[tuple[str, str]] = []
    for key, code in mapping.items():
        if key not in DEFAULT_CODES:
            out.append((key, f"unknown event; one of {', '.join(sorted(DEFAULT_CODES))}"))
        elif not isinstance(code, str) or code not in KNOWN_CODES:
            out.append((key, f"{code!r} is not a SIA DC-03 event code (two capital letters "
                             "from the DC-03 list, e.g. PA, HA, TA)"))
    return out
