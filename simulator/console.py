"""The simulator's interactive console: press buttons and break things, by typing.

A stdlib :class:`cmd.Cmd` over a :class:`~simulator.rig.SimulatedSite`, with readline
completion of commands, device ids and modes, and ``help <command>`` for each. It reads
from any text stream (tests feed it lines) and never stops on a bad command: the reason is
printed as one ``error:`` line and the prompt comes back.
"""

from __future__ import annotations

import cmd
import json
import shlex
import threading
from datetime import datetime, tzinfo
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core.clock import parse_rfc3339
from gateway.core.errors import GatewayError
from simulator.faults import ARC_MODES, HOTLINE_MODES, MODEM_MODES
from simulator.observer import KEEP
from simulator.rig import LED_NAMES, PoliceMessage, SimulatedSite
from simulator.verdicts import Judge, command_judge, sms_judge

MQTT_DEFAULT_N = 20
ARC_SHOWN = 30  # the ARC's last arrivals the `arc` verb shows
#: how long the console waits for the gateway's verdict on a command (s); an SMS waits
#: the modem's poll interval on top
VERDICT_WAIT_S = 3.0


class SimConsole(cmd.Cmd):
    intro = "Type `help` for the commands, `devices` to see the site, `quit` to stop."
    prompt = "sim> "

    def __init__(self, site: SimulatedSite, stdin: TextIO | None = None,
                 stdout: TextIO | None = None) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        self.use_rawinput = stdin is None  # readline only on a real terminal
        self.site = site
        self.zone = _zone(site.config.site.timezone)
        self._out_lock = threading.Lock()
        site.on_gateway_gone(self._gateway_gone)

    # -- plumbing ---------------------------------------------------------------------
    def say(self, text: str) -> None:
        with self._out_lock:  # the watchdog thread speaks too
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def _gateway_gone(self, reason: str) -> None:
        self.say(f"\n!! {reason}")
        self.say("!! presses, commands and SMS now reach nobody: `quit`, read the log, "
                 "start again")

    def local(self, unix: float) -> str:
        """``HH:MM:SS`` in the site's time zone (the one its staff read)."""
        return datetime.fromtimestamp(unix, self.zone).strftime("%H:%M:%S")

    def verdict(self, after: int, judge: Judge, wait_s: float = VERDICT_WAIT_S) -> None:
        """Say what the gateway journaled about the action sent after seq ``after``."""
        answer = self.site.wait_journal(after, judge, wait_s)
        if answer is None:
            if self.site.gateway_gone:
                answer = "no answer: the gateway is gone"
            else:
                answer = (f"no verdict in the journal after {wait_s:g} s; see `events` "
                          "(alarm-gateway events -c FILE)")
        self.say(f"  gateway: {answer}")

    def do_help(self, arg: str) -> None:
        """help [COMMAND]: every command with one line, or the whole help of one."""
        if arg:
            super().do_help(arg)
            return
        seen: set[object] = set()
        lines = []
        for name in self.get_names():
            method = getattr(self, name) if name.startswith("do_") else None
            if method is None or name == "do_EOF" or method.__func__ in seen:
                continue  # Ctrl-D and aliases (exit) are not commands to list
            seen.add(method.__func__)
            lines.append(_summary(method.__doc__ or name[3:]))
        for usage, summary in sorted(lines):
            if len(usage) > 30:
                self.say(f"  {usage}\n  {'':<30} {summary}")
            else:
                self.say(f"  {usage:<30} {summary}")
        self.say("`help COMMAND` for more; Tab completes commands and device ids; "
                 "Ctrl-D or `quit` ends.")

    def onecmd(self, line: str) -> bool:
        try:
            return super().onecmd(line)
        except (GatewayError, OSError, TimeoutError, ValueError) as exc:
            self.say(f"error: {exc}")
            return False

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> None:
        self.say(f"error: unknown command {line.split()[0]!r}; type `help`")

    def _args(self, arg: str, least: int, usage: str) -> list[str]:
        words = shlex.split(arg)
        if len(words) < least:
            raise ValueError(f"usage: {usage}")
        return words

    def _devices(self, text: str) -> list[str]:
        return [d.id for d in self.site.config.devices if d.id.startswith(text)]

    def _complete_device(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        return self._devices(text) if len(line[:begidx].split()) == 1 else []

    complete_press = complete_hold = complete_release = _complete_device
    complete_silence = complete_reboot = complete_drain = complete_tamper = _complete_device
    complete_ack = complete_resolve = complete_drill = _complete_device

    # -- the site ---------------------------------------------------------------------
    def do_devices(self, arg: str) -> None:
        """devices: each device's wiring, state, battery and LED (the state as MQTT shows it)."""
        if self.site.gateway_gone:
            self.say(f"!! {self.site.gateway_gone}: the states below are the last it published")
        leds = self.site.leds() if not self.site.gateway_gone else {}
        obs = self.site.observer
        self.say(f"{'device':<16} {'input':<9} {'ward':<10} {'state':<8} {'batt mV':>7}  LED")
        for d in self.site.config.devices:
            doc: dict[str, Any] = (obs.device_state(d.id) if obs else None) or {}
            wiring = f"pin {d.pin}" if d.input == "gpio" else f"node {d.node}"
            led = leds.get(d.id)
            shown = "?" if led is None else f"{led} {LED_NAMES.get(led, '')}"
            batt = doc.get("battery_mv")
            self.say(f"{d.id:<16} {wiring:<9} {d.ward:<10} {doc.get('state', '?'):<8} "
                     f"{batt if batt else '-':>7}  {shown}")

    def do_status(self, arg: str) -> None:
        """status: the gateway's state at a glance, as `alarm-gateway status` shows it."""
        from gateway.cli_status import judge, render

        assert self.site.derived is not None
        answer = self.site.control({"cmd": "status"}, timeout=5.0)
        self.say(render(answer, judge(answer, self.site.derived), self.site.derived))

    def do_press(self, arg: str) -> None:
        """press ID: a short press of a button (GPIO or serial node)."""
        device = self._args(arg, 1, "press ID")[0]
        self.site.press(device)
        self.say(f"pressed {device}")

    def do_hold(self, arg: str) -> None:
        """hold ID: press and keep it down (a duress HOLD after its hold time); `release ID`
        lets go."""
        device = self._args(arg, 1, "hold ID")[0]
        self.site.hold(device)
        self.say(f"holding {device}; `release {device}` to let go")

    def do_release(self, arg: str) -> None:
        """release ID: let go of a held button."""
        device = self._args(arg, 1, "release ID")[0]
        self.site.release(device)
        self.say(f"released {device}")

    def do_silence(self, arg: str) -> None:
        """silence ID [off]: a serial node stops transmitting (offline after its supervision
        time); `silence ID off` brings it back."""
        words = self._args(arg, 1, "silence ID [off]")
        on = not (len(words) > 1 and words[1] == "off")
        self.site.silence(words[0], on)
        self.say(f"{words[0]} {'silenced' if on else 'transmitting again'}")

    def do_reboot(self, arg: str) -> None:
        """reboot ID: power-cycle a serial node (it sends BOOT; its seq survives)."""
        device = self._args(arg, 1, "reboot ID")[0]
        self.site.reboot(device)
        self.say(f"{device} rebooted")

    def do_drain(self, arg: str) -> None:
        """drain ID [mV]: set a serial node's battery (default 2400 mV, below the low mark)."""
        words = self._args(arg, 1, "drain ID [mV]")
        mv = int(words[1]) if len(words) > 1 else 2400
        self.site.drain(words[0], mv)
        self.say(f"{words[0]} battery at {mv} mV")

    def do_tamper(self, arg: str) -> None:
        """tamper ID [off]: open a serial node's enclosure; `tamper ID off` closes it."""
        words = self._args(arg, 1, "tamper ID [off]")
        opened = not (len(words) > 1 and words[1] == "off")
        self.site.tamper(words[0], opened)
        self.say(f"{words[0]} enclosure {'opened' if opened else 'closed'}")

    def do_noisy(self, arg: str) -> None:
        """noisy on|off: corrupt, drop and duplicate bytes on the serial line."""
        word = self._args(arg, 1, "noisy on|off")[0]
        if word not in ("on", "off"):
            raise ValueError("usage: noisy on|off")
        self.say(self._faults().noisy(word == "on"))

    def complete_noisy(self, text: str, *ignored: Any) -> list[str]:
        return [w for w in ("on", "off") if w.startswith(text)]

    def do_modem(self, arg: str) -> None:
        """modem online|offline|noreg|error CODE [N]: how the modem behaves; offline = silent
        (hung, no power); noreg = lost registration; error = the next N sends answer +CMS ERROR: CODE."""
        words = self._args(arg, 1, "modem online|offline|noreg|error CODE [N]")
        code = int(words[1]) if len(words) > 1 else None
        times = int(words[2]) if len(words) > 2 else 1
        self.say(self._faults().modem_mode(words[0], code, times))

    def complete_modem(self, text: str, *ignored: Any) -> list[str]:
        return [m for m in MODEM_MODES if m.startswith(text)]

    def do_hotline(self, arg: str) -> None:
        """hotline ok|500|429|400|hang|garbage|down [N]: how the police hotline answers
        (every request until `hotline ok`, or the next N)."""
        words = self._args(arg, 1, "hotline ok|500|429|400|hang|garbage|down [N]")
        times = int(words[1]) if len(words) > 1 else None
        self.say(self._faults().hotline_mode(words[0], times))

    def complete_hotline(self, text: str, *ignored: Any) -> list[str]:
        return [m for m in HOTLINE_MODES if m.startswith(text)]

    def do_arc(self, arg: str) -> None:
        """arc [ack|nak|duh|silence|down [N]]: what the simulated alarm receiving centre
        received (no argument), or how it answers (every message until `arc ack`, or the
        next N)."""
        words = shlex.split(arg)
        if words:
            times = int(words[1]) if len(words) > 1 else None
            self.say(self._faults().arc_mode(words[0], times))
            return
        arc = self.site.arc
        if arc is None:
            self.say("this site has no receiving centre ([escalation.dc09])")
            return
        arrivals = arc.arrivals()
        for a in arrivals[-ARC_SHOWN:]:
            self.say(a.line())
        if not arrivals:
            self.say("the receiving centre has received nothing")

    def complete_arc(self, text: str, *ignored: Any) -> list[str]:
        return [m for m in ARC_MODES if m.startswith(text)]

    def do_sms(self, arg: str) -> None:
        """sms FROM TEXT: an SMS reaches the gateway's modem, then what the gateway made of it,
        e.g. `sms +84912000113 OK 0427` (a police acknowledgement)."""
        words = self._args(arg, 2, "sms FROM TEXT")
        self.site.need_gateway()
        after = self.site.journal_seq()
        self.say(self._faults().sms_from(words[0], " ".join(words[1:])))
        poll_s = self.site.config.modem.poll_s if self.site.config.modem else 0
        self.verdict(after, sms_judge(words[0]), VERDICT_WAIT_S + poll_s)

    def do_drill(self, arg: str) -> None:
        """drill [ID]: raise a drill alarm end to end (the first device by default)."""
        words = shlex.split(arg)
        answer = self.site.drill(words[0] if words else None)
        self.say(f"drill alarm {answer.get('code')} raised on {answer.get('device')}")

    def do_ack(self, arg: str) -> None:
        """ack ID: the security desk acknowledges the device's open alarm (over MQTT), then
        what the gateway did with it."""
        device = self._args(arg, 1, "ack ID")[0]
        self._desk(device, "ack")

    def do_resolve(self, arg: str) -> None:
        """resolve ID: the security desk resolves the device's open alarm (over MQTT), then
        what the gateway did with it."""
        device = self._args(arg, 1, "resolve ID")[0]
        self._desk(device, "resolve")

    def _desk(self, device: str, action: str) -> None:
        after = self.site.journal_seq()
        send = self.site.ack if action == "ack" else self.site.resolve
        code, alarm_id = send(device)
        self.say(f"{action} published for alarm {code} of {device}")
        self.verdict(after, command_judge(alarm_id, action))

    def do_alarms(self, arg: str) -> None:
        """alarms: every alarm the gateway published, with its state and when it was raised."""
        alarms = self.site.observer.alarms() if self.site.observer else []
        for a in alarms:
            drill = " DRILL" if a.get("drill") else ""
            try:
                raised = self.local(parse_rfc3339(str(a.get("raised_at"))))
            except ValueError:
                raised = "?"
            self.say(f"{raised} {a.get('code')} {a.get('state'):<20} {a.get('type'):<8} "
                     f"{a.get('device')}{drill} presses={a.get('press_count')}")
        if not alarms:
            self.say("no alarms")

    def do_police(self, arg: str) -> None:
        """police: what the police received, as one timeline; HTTP requests (with the answer)
        and SMS (parts joined, as a phone shows them), identical retries folded."""
        items = self.site.police()
        if not items:
            self.say("the police have received nothing")
            return
        last_text = None
        for group in _fold(items):
            first, n = group[0], len(group)
            when = self.local(first.at)
            if n > 1:
                when += f"–{self.local(group[-1].at)}"
            if first.channel == "sms":
                what = "received" + (f" ({first.parts} parts)" if first.parts > 1 else "")
            else:
                what = f"answered {first.answer}"
            times = f" ×{n}" if n > 1 else ""
            drill = " [drill]" if first.drill else ""
            self.say(f"{when:<17} {first.channel.upper():<4} {first.target:<16} {what}{times}{drill}")
            if first.text != last_text:
                self.say(f"{'':<17} {first.text}")
                last_text = first.text

    def do_mqtt(self, arg: str) -> None:
        """mqtt [N] [TOPIC]: the last N MQTT messages of the site (default 20), whole, in
        local time; TOPIC keeps those whose topic starts with it (e.g. `mqtt 5 events`)."""
        words = shlex.split(arg)
        n = int(words[0]) if words and words[0].isdigit() else MQTT_DEFAULT_N
        prefix = next((w for w in words if not w.isdigit()), "")
        seen = self.site.observer.recent(KEEP) if self.site.observer else []
        shown = [m for m in seen if m.topic.startswith(prefix)][-n:]
        for m in shown:
            flag = " (retained)" if m.retain else ""
            self.say(f"{self.local(m.wall)} {m.topic}{flag} {_compact(m.payload)}")
        if not shown:
            self.say("no MQTT messages" + (f" on {prefix}…" if prefix else ""))

    def do_quit(self, arg: str) -> bool:
        """quit: stop the gateway and every simulator."""
        self.say("stopping the simulated site")
        return True

    do_exit = do_quit

    def do_EOF(self, arg: str) -> bool:
        """Ctrl-D: same as quit."""
        return self.do_quit(arg)

    def _faults(self) -> Any:
        if self.site.faults is None:
            raise ValueError("the simulated site is not running")
        return self.site.faults


def _summary(doc: str) -> tuple[str, str]:
    """``(usage, one-line summary)`` of a command's docstring ``usage: what; more``."""
    text = " ".join(doc.split())
    usage, _, what = text.partition(": ")
    cut = min((i for i in (what.find(m) for m in ("; ", " (", ". ", ", e.g.")) if i > 0),
              default=len(what))
    return usage, what[:cut].rstrip(".")


def _compact(payload: str) -> str:
    """JSON on one line, whole (a technician needs the event type at the end too)."""
    try:
        return json.dumps(json.loads(payload), ensure_ascii=False)
    except (ValueError, RecursionError):
        return payload


def _fold(items: list[PoliceMessage]) -> list[list[PoliceMessage]]:
    """Runs of identical deliveries (same channel, target, text and answer): a retry
    storm reads as one line with a count."""
    groups: list[list[PoliceMessage]] = []
    for item in items:
        last = groups[-1][0] if groups else None
        if last is not None and (last.channel, last.target, last.text, last.answer) == (
                item.channel, item.target, item.text, item.answer):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")
