"""
What data quality costs: a tracking plan, before_send, and ``otel-segment validate``.

Usage: ``python bench/quality.py [--iterations N] [--rounds R] [--lines L]``
(also ``python bench/run.py quality``).

Method. Every figure is the best of *R* interleaved rounds of *N* calls after a warm-up,
in thread CPU µs (a busy machine's waits for the CPU are left out), on clients with
``send=False`` (they build, check and encode each message, and queue nothing; the calls give their
messageId and timestamp, so no random id or clock read adds noise), so the differences
are the hooks' own work:

- plan: the client's hook stage with ``plan=`` (an event with 10 typed properties, all
  required), minus the encoding every message gets anyway. Target: <= 3 µs.
- before_send: the hook stage with an identity hook, minus the encoding, minus the
  hook's own call (timed alone). Target: <= 0.3 µs.
- as a cross-check, the same differences between whole ``track()`` calls (noisier: a
  shared machine varies by more than the figures).
- validators: the same message checked by jsonschema-rs (the one the plan uses),
  fastjsonschema and jsonschema, where installed: why jsonschema-rs.
- validate: ``otel-segment validate`` over *L* generated JSON lines (Segment messages,
  a tenth of them violating), in process: lines per second of process CPU (target:
  >= 50,000), and per wall-clock second (what a busy machine gives).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Final

from _common import per_call_us, report

import otel_segment
from otel_segment.cli import main as cli_main
from otel_segment.pipeline.encoding import dumps

TYPES: Final = ("string", "number", "integer", "boolean") * 3
PROPERTIES: Final = {f"p{n}": TYPES[n] for n in range(10)}
VALUES: Final = {"string": "text", "number": 1.5, "integer": 3, "boolean": True}
EVENT_PROPERTIES: Final = {name: VALUES[kind] for name, kind in PROPERTIES.items()}
PLAN_DOCUMENT: Final = {
    "events": {
        "Order Completed": {
            "type": "object",
            "properties": {name: {"type": kind} for name, kind in PROPERTIES.items()},
            "required": list(PROPERTIES),
        }
    }
}
ARGS: Final = ("u1", "Order Completed", EVENT_PROPERTIES)
MESSAGE_ID: Final = "m-1"
TIMESTAMP: Final = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""A given id and time: no uuid4 (a system call) or clock per call, so less noise."""
TARGETS: Final = {"plan_added_us": 3.0, "before_send_added_us": 0.3, "validate_lines_per_s": 50_000}


def best(calls: dict[str, Any], iterations: int, rounds: int) -> dict[str, float]:
    """
    The best thread-CPU µs per call of each of *calls*, rounds interleaved.

    CPU time and the minimum over interleaved rounds keep a busy machine's noise (other
    processes taking the CPU) out of differences of a fraction of a microsecond.
    """
    figures = dict.fromkeys(calls, float("inf"))
    order = list(calls.items())
    for number in range(rounds):
        shift = number % len(order)  # each round starts with another call
        for name, call in order[shift:] + order[:shift]:
            figures[name] = min(figures[name], per_call_us(call, iterations)[1])
    return figures


def track_costs(iterations: int, rounds: int) -> dict[str, float]:
    """
    µs per track: plain, with the plan, with an identity ``before_send`` (end to end).

    Then the hook stage alone, as the client calls it, against the encoding it does
    anyway: the targets apply to these (end-to-end differences of a few tenths of a µs
    are below the noise of a shared machine; they are shown as a cross-check).
    """
    plan = otel_segment.TrackingPlan.from_dict(PLAN_DOCUMENT)

    def hook(message: dict[str, Any]) -> dict[str, Any]:
        return message

    plain = otel_segment.Client(send=False)
    planned = otel_segment.Client(send=False, plan=plan, on_violation="raise")
    hooked = otel_segment.Client(send=False, before_send=hook)
    calls = [
        partial(client.track, *ARGS, message_id=MESSAGE_ID, timestamp=TIMESTAMP)
        for client in (plain, planned, hooked)
    ]
    _, message = calls[0]()
    as_dict: dict[str, Any] = dict(message)
    plan_stage, hook_stage = planned._hooks, hooked._hooks  # noqa: SLF001 - the stage alone
    if plan_stage is None or hook_stage is None:
        raise RuntimeError("the clients have no hook stage")
    try:
        figures = best(
            {
                "plain_us": calls[0],
                "planned_us": calls[1],
                "hooked_us": calls[2],
                "encode_us": lambda: dumps(message),
                "plan_stage_us": lambda: plan_stage(message, True),  # noqa: FBT003 - as the client calls it
                "hook_stage_us": lambda: hook_stage(message, True),  # noqa: FBT003
                "hook_alone_us": lambda: hook(as_dict),
                "empty_call_us": lambda: None,
            },
            iterations,
            rounds,
        )
    finally:
        for client in (plain, planned, hooked):
            client.shutdown()
    # The hook's own work: its call, less the timing loop's own empty call.
    hook_work = figures["hook_alone_us"] - figures["empty_call_us"]
    figures["plan_added_us"] = figures["plan_stage_us"] - figures["encode_us"]
    figures["before_send_added_us"] = figures["hook_stage_us"] - figures["encode_us"] - hook_work
    figures["plan_end_to_end_us"] = figures["planned_us"] - figures["plain_us"]
    figures["before_send_end_to_end_us"] = figures["hooked_us"] - figures["plain_us"] - hook_work
    return figures


def validator_costs(iterations: int, rounds: int) -> dict[str, float]:
    """µs per check of one message by each validator that is installed."""
    message = {"type": "track", "event": "Order Completed", "properties": EVENT_PROPERTIES}
    schema = {
        "type": "object",
        "properties": {"properties": PLAN_DOCUMENT["events"]["Order Completed"]},
    }
    import jsonschema_rs  # noqa: PLC0415

    checker = jsonschema_rs.Draft7Validator(schema)
    calls: dict[str, Any] = {"jsonschema_rs_us": lambda: checker.is_valid(message)}
    with contextlib.suppress(ImportError):
        import fastjsonschema  # noqa: PLC0415

        compiled = fastjsonschema.compile(schema)
        calls["fastjsonschema_us"] = lambda: compiled(message)
    figures = best(calls, iterations, rounds)
    with contextlib.suppress(ImportError):
        import jsonschema  # noqa: PLC0415

        draft7 = jsonschema.Draft7Validator(schema)
        slow = best({"jsonschema_us": lambda: draft7.is_valid(message)}, iterations // 50, rounds)
        figures.update(slow)
    return figures


def validate_rate(lines: int, rounds: int) -> dict[str, float]:
    """Lines per second of ``otel-segment validate`` over *lines* generated lines."""
    with tempfile.TemporaryDirectory() as folder:
        plan_path = Path(folder) / "plan.json"
        plan_path.write_text(json.dumps(PLAN_DOCUMENT))
        log = Path(folder) / "messages.jsonl"
        with log.open("w") as out:
            for number in range(lines):
                properties = dict(EVENT_PROPERTIES, p1="wrong" if number % 10 == 0 else 1.5)
                message = {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"u{number}",
                    "messageId": f"m{number}",
                    "timestamp": "2026-01-01T00:00:00.000+00:00",
                    "context": {"library": {"name": "otel-segment"}},
                    "properties": properties,
                }
                out.write(json.dumps(message) + "\n")
        wall = cpu = float("inf")
        for _ in range(rounds):
            start, cpu_start = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(io.StringIO()):
                status = cli_main(["validate", "--no-progress", str(plan_path), str(log)])
            wall = min(wall, time.perf_counter() - start)
            cpu = min(cpu, time.process_time() - cpu_start)
            if status != 1:
                raise RuntimeError(f"validate exited {status}, expected 1 (violations)")
    return {
        "validate_lines": lines,
        "validate_lines_per_s": lines / cpu,
        "validate_lines_per_wall_s": lines / wall,
    }


def table(result: dict[str, float]) -> str:
    """The figures, with targets."""
    rows = [
        ("track(), no hooks (µs)", "plain_us", None),
        ("track() with a 10-property plan (µs)", "planned_us", None),
        ("track() with before_send=identity (µs)", "hooked_us", None),
        ("encoding the message, done anyway (µs)", "encode_us", None),
        ("plan stage: check + encoding (µs)", "plan_stage_us", None),
        ("  plan adds (µs)", "plan_added_us", "<="),
        ("  cross-check, end to end (µs)", "plan_end_to_end_us", None),
        ("before_send stage: hook + encoding (µs)", "hook_stage_us", None),
        ("  the hook's own call (µs)", "hook_alone_us", None),
        ("  before_send adds beyond it (µs)", "before_send_added_us", "<="),
        ("  cross-check, end to end (µs)", "before_send_end_to_end_us", None),
        ("check: jsonschema-rs (µs)", "jsonschema_rs_us", None),
        ("check: fastjsonschema (µs)", "fastjsonschema_us", None),
        ("check: jsonschema (µs)", "jsonschema_us", None),
        ("otel-segment validate (lines per CPU s)", "validate_lines_per_s", ">="),
        ("  the same, per wall-clock s", "validate_lines_per_wall_s", None),
    ]
    lines = [f"{'figure':<42}{'value':>12}  target"]
    for label, key, op in rows:
        if key not in result:
            continue
        value = result[key]
        target = ""
        if op is not None:
            bound = TARGETS[key]
            passed = value <= bound if op == "<=" else value >= bound
            target = f"{'≤' if op == '<=' else '≥'} {bound:,g}  {'PASS' if passed else 'MISS'}"
        digits = 0 if "_per_" in key else 2
        lines.append(f"{label:<42}{value:>12,.{digits}f}  {target}")
    return "\n".join(lines)


def main() -> None:
    """Parse the options, measure, print the table and ``RESULT {json}``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    rounds = max(args.rounds, 1)
    result = {
        **track_costs(args.iterations, rounds),
        **validator_costs(args.iterations, rounds),
        **validate_rate(args.lines, rounds),
    }
    report(table(result), result)


if __name__ == "__main__":
    main()
