"""``alarm-gateway events`` as a technician reads it: the newest page in the site's local
time, a last line that says when more exist and which option shows them, filters checked
against the config, usage errors for impossible limits, and ``--follow``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from queue import Empty, Queue

import pytest

from gateway.cli import main
from gateway.core.clock import rfc3339
from gateway.journal.store import Batch, Journal

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_935_600.0  # 2026-11-29T07:00:00Z = 14:00 in Hà Nội
ALARM = "a1b2c3d4-0000-4000-8000-000000000001"


def _event(i: int) -> dict[str, object]:
    device, ward = ("er-desk-1", "cap-cuu") if i % 2 else ("exam-desk-1", "kham-benh")
    return {"id": str(uuid.uuid4()), "ts": rfc3339(T0 + i), "_ts": T0 + i, "site": "bvdk-tinh",
            "ward": ward, "room": "r", "device": device, "kind": "panic_button",
            "type": "press" if i % 4 < 2 else "release", "value": 0, "drill": False,
            "alarm_id": ALARM if i in (7, 9, 11) else None}


def _commit(journal_file: Path, events: list[dict[str, object]],
            retained: dict[str, object] | None = None) -> None:
    async def go() -> None:
        journal = Journal(journal_file)
        journal.open()
        await journal.start()
        try:
            await journal.commit(Batch(events=events, retained=retained or {}))
        finally:
            await journal.stop()
            journal.close()

    asyncio.run(go())


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The example site with 2,500 events in its journal."""
    storage = tmp_path / "var"
    text = (ROOT / "examples" / "site.toml").read_text(encoding="utf-8")
    config = tmp_path / "site.toml"
    config.write_text(text.replace('path = "var/alarm-gateway"', f'path = "{storage}"'))
    storage.mkdir()
    _commit(storage / "journal.sqlite3", [_event(i) for i in range(1, 2501)],
            {f"alarm/{ALARM}": {"id": ALARM, "code": "0427", "state": "resolved"}})
    return config


def _lines(capsys: pytest.CaptureFixture[str]) -> tuple[list[str], list[str]]:
    out, err = capsys.readouterr()
    return out.splitlines(), err.splitlines()


def test_newest_page_in_local_time_says_how_to_page_back(site: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["events", "-c", str(site)]) == 0
    out, _ = _lines(capsys)
    assert out[0].split()[:3] == ["SEQ", "TIME", "(Asia/Ho_Chi_Minh)"]
    assert len(out) == 1 + 1000 + 1
    assert out[1].split()[:3] == ["1501", "2026-11-29", "14:25:01.000"]
    assert out[-1] == "(1000 events, seq 1501–2500; earlier ones: --before 1501)"


def test_paging_back_and_forth(site: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["events", "-c", str(site), "--before", "1501", "--limit", "500"]) == 0
    out, _ = _lines(capsys)
    assert [out[1].split()[0], out[-2].split()[0]] == ["1001", "1500"]
    assert out[-1] == ("(500 events, seq 1001–1500; earlier ones: --before 1001; "
                       "later ones: --after 1500)")
    assert main(["events", "-c", str(site), "--after", "2490", "--utc"]) == 0
    out, _ = _lines(capsys)
    assert out[0].split()[:3] == ["SEQ", "TIME", "(UTC)"]
    assert out[1].split()[:3] == ["2491", "2026-11-29", "07:41:31.000"]
    assert out[-1] == "(10 events, seq 2491–2500; earlier ones: --before 2491)"
    assert main(["events", "-c", str(site), "--since", "2026-11-29T07:41:39Z"]) == 0
    out, _ = _lines(capsys)
    assert out[-1] == "(2 events, seq 2499–2500)"


def test_filters_and_json(site: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["events", "-c", str(site), "--json", "--device", "er-desk-1", "--type",
                 "press", "--limit", "5000"]) == 0
    out, err = _lines(capsys)
    events = [json.loads(line) for line in out]
    assert len(events) == 625
    assert {(e["device"], e["type"]) for e in events} == {("er-desk-1", "press")}
    assert err == [f"(625 events, seq {events[0]['seq']}–{events[-1]['seq']})"]
    assert main(["events", "-c", str(site), "--ward", "kham-benh", "--type", "press,release",
                 "--limit", "3"]) == 0
    out, _ = _lines(capsys)
    assert all(" exam-desk-1 " in line for line in out[1:-1])
    assert main(["events", "-c", str(site), "--alarm", "0427"]) == 0
    out, _ = _lines(capsys)
    assert [line.split()[0] for line in out[1:-1]] == ["7", "9", "11"]
    assert main(["events", "-c", str(site), "--alarm", ALARM[:8], "--json"]) == 0
    out, _ = _lines(capsys)
    assert [json.loads(line)["seq"] for line in out] == [7, 9, 11]
    assert main(["events", "-c", str(site), "--alarm", "9999"]) == 0
    out, _ = _lines(capsys)
    assert out == ["(no events match these filters)"]


@pytest.mark.parametrize("args, says", [
    (["--limit", "-5"], "argument --limit: -5 is not at least 1"),
    (["--limit", "0"], "argument --limit: 0 is not at least 1"),
    (["--before", "x"], "argument --before: 'x' is not an event number (SEQ)"),
    (["--before", "5", "--after", "2"], "not allowed with argument"),
    (["--device", "er-dsk-1"], "--device 'er-dsk-1': no such device; known: er-desk-1"),
    (["--ward", "icu"], "--ward 'icu': no such ward; known: cap-cuu, kham-benh"),
    (["--type", "presss"], "--type 'presss': no such event type; known: alarm_state"),
])
def test_usage_errors_exit_2_with_one_clear_line(site: Path, capsys, args, says) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_info:
        code = main(["events", "-c", str(site), *args])
        raise SystemExit(code)
    assert exit_info.value.code == 2
    _, err = capsys.readouterr()
    assert says in err and "Traceback" not in err


def test_a_past_simulation_is_pointed_at(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    storage = tmp_path / "var"
    text = (ROOT / "examples" / "site.toml").read_text(encoding="utf-8")
    config = tmp_path / "site.toml"
    config.write_text(text.replace('path = "var/alarm-gateway"', f'path = "{storage}"'))
    (storage / "simulate").mkdir(parents=True)
    (storage / "simulate" / "simulate.toml").write_text("# derived\n")
    assert main(["events", "-c", str(config)]) == 1
    _, err = capsys.readouterr()
    assert f"no journal at {storage}/journal.sqlite3" in err
    assert f"alarm-gateway events -c {storage}/simulate/simulate.toml" in err


def _reader(stream, queue: Queue[str]) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        queue.put(line.rstrip("\n"))


def _next(queue: Queue[str], want: str, timeout: float = 15.0) -> str:
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            line = queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except Empty:
            raise AssertionError(f"no line with {want!r} within {timeout} s") from None
        if want in line:
            return line


def test_follow_prints_new_events_as_they_are_committed(site: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "events", "-c", str(site),
                             "--follow", "--device", "er-desk-1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    lines: Queue[str] = Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    try:
        assert _next(lines, "events, seq") == "(10 events, seq 2481–2499; earlier ones: --before 2481)"
        _next(lines, "following new events")
        _commit(site.parent / "var" / "journal.sqlite3", [_event(2502), _event(2503)])
        line = _next(lines, "er-desk-1")
        assert line.split()[0] == "2502" and "exam-desk-1" not in line
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_closed_pipe_is_not_a_traceback(site: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "events", "-c", str(site)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()  # `events | head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(20) == 0 and "Traceback" not in err
