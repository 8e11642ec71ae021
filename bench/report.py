"""Results as JSON and as markdown tables (Roost vs mosquitto, with ratios and targets; Roost
vs amqtt; durable QoS 1: Roost sync vs Roost memory vs mosquitto with persistence)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DOC_BEGIN = "<!-- bench:begin -->"
DOC_END = "<!-- bench:end -->"


def _num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def _ratio(a: float | None, b: float | None, digits: int = 2) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.{digits}f}x"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _m(results: dict[str, Any], key: str, broker: str) -> dict[str, Any]:
    cell = results["cells"].get(key, {})
    return dict(cell.get(broker, {}).get("median", {}))


def _idle_table(
    header: str, a: dict[str, Any], b: dict[str, Any], digits: tuple[int, int], target: bool
) -> list[str]:
    """An idle-connections table under its `header` row (`| first | a | b | ratio |`):
    broker `a` beside broker `b` and their ratio (`digits` after the point: memory, rates),
    with a target column (Roost's memory target on the first row) when `target`; then a
    blank line."""
    ab, bb = a.get("bytes_per_connection"), b.get("bytes_per_connection")
    tail = [" Roost ≤ 8 KiB |", "  |", "  |", "  |"] if target else ["", "", "", ""]
    rows = [
        f"| broker VmRSS per connection (KiB) | {_num(ab and ab / 1024, 2)} "
        f"| {_num(bb and bb / 1024, 2)} | {_ratio(ab, bb, digits[0])} |",
    ]
    for label, field in (
        ("connects per broker CPU-second", "connects_per_broker_cpu_s"),
        ("connects per second (wall clock)", "connects_per_s"),
    ):
        rows.append(
            f"| {label} | {_num(a.get(field))} | {_num(b.get(field))} "
            f"| {_ratio(a.get(field), b.get(field), digits[1])} |"
        )
    rows.append(
        f"| connected / failed | {_num(a.get('connected'))} / {_num(a.get('failed'))} "
        f"| {_num(b.get('connected'))} / {_num(b.get('failed'))} |  |"
    )
    head = [
        header + (" target |" if target else ""),
        "|---|---:|---:|---:|" + ("---|" if target else ""),
    ]
    return [*head, *(row + extra for row, extra in zip(rows, tail, strict=True)), ""]


def markdown(results: dict[str, Any]) -> str:
    lines: list[str] = []
    m = results["machine"]
    p = results["profile"]
    lines.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']:.1f} GiB, {m['kernel']}; "
        f"Python {m['python']}, uvloop {m['uvloop']}; {m['mosquitto']}; "
        f"{m.get('amqtt', 'amqtt not run')}; Roost {m['roost_commit']}."
    )
    if m.get("data_fs"):
        lines.append(
            f"Durable cells' data directories on {m['data_fs']}; 4 KiB write + fsync there: "
            f"{_num(m.get('fsync_ms'), 2)} ms (median of 20)."
        )
    for note in results.get("notes", []):
        lines.append(f"Note: {note}.")
    lines.append(
        f"Profile `{p['name']}`: median of {p['reps']} runs per cell, {p['duration']:g} s each "
        f"(first {p['warmup']:g} s not counted); generator and broker share the machine."
    )
    lines.append("")
    lines.append("### Throughput (delivered messages per second, median)")
    lines.append("")
    lines.append(
        "| cell | Roost msg/s | mosquitto msg/s | ratio | Roost loss | mosquitto loss "
        "| Roost msg/CPU-s | mosquitto msg/CPU-s | ratio | target |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, cell in results["cells"].items():
        if cell["kind"] != "throughput":
            continue
        r, q = _m(results, key, "roost"), _m(results, key, "mosquitto")
        target = "≥ 0.25x" if key.startswith("p2p") else "≥ 0.5x" if "fanout" in key else ""
        lines.append(
            f"| {cell['title']} | {_num(r.get('delivered_per_s'))} "
            f"| {_num(q.get('delivered_per_s'))} "
            f"| {_ratio(r.get('delivered_per_s'), q.get('delivered_per_s'))} "
            f"| {_pct(r.get('loss'))} | {_pct(q.get('loss'))} "
            f"| {_num(r.get('msgs_per_broker_cpu_s'))} | {_num(q.get('msgs_per_broker_cpu_s'))} "
            f"| {_ratio(r.get('msgs_per_broker_cpu_s'), q.get('msgs_per_broker_cpu_s'))} "
            f"| {target} |"
        )
    lines.append("")
    lines.append("### Latency at a fixed 1,000 msg/s (ms, median of runs)")
    lines.append("")
    lines.append(
        "| cell | Roost p50 | Roost p99 | Roost max | mosquitto p50 | mosquitto p99 "
        "| mosquitto max | Roost loss | target |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, cell in results["cells"].items():
        if cell["kind"] != "latency":
            continue
        r = _m(results, key, "roost").get("latency_ms", {})
        q = _m(results, key, "mosquitto").get("latency_ms", {})
        lines.append(
            f"| {cell['title']} | {_num(r.get('p50'), 3)} | {_num(r.get('p99'), 3)} "
            f"| {_num(r.get('max'), 3)} | {_num(q.get('p50'), 3)} | {_num(q.get('p99'), 3)} "
            f"| {_num(q.get('max'), 3)} | {_pct(_m(results, key, 'roost').get('loss'))} "
            f"| Roost p99 ≤ 2 ms |"
        )
    lines.append("")
    for key, cell in results["cells"].items():
        if cell["kind"] != "idle" or "mosquitto" not in cell:
            continue  # the 1,000-connection cell is Roost vs amqtt: see amqtt_tables
        r, q = _m(results, key, "roost"), _m(results, key, "mosquitto")
        lines.append(f"### {cell['title']}")
        lines.append("")
        lines.extend(_idle_table("| metric | Roost | mosquitto | ratio |", r, q, (1, 2), True))
    for key, cell in results["cells"].items():
        if cell["kind"] != "overload":
            continue
        lines.append(f"### {cell['title']}")
        lines.append("")
        lines.append("| metric | Roost | mosquitto | target |")
        lines.append("|---|---:|---:|---|")
        stats = {b: overload_summary(_m(results, key, b)) for b in ("roost", "mosquitto")}
        rows = [
            ("peak delivered msg/s (best 1 s)", "peak", 0, ""),
            ("delivered msg/s, last 10 s (mean)", "tail", 0, ""),
            ("last 10 s / peak", "tail_ratio", 2, "Roost ≥ 0.90"),
            ("broker VmRSS max (MiB)", "rss_max_mib", 1, "bounded"),
            ("broker VmRSS growth, second half (MiB)", "rss_growth_mib", 1, "≈ 0"),
            ("loss (incl. TCP backlog at stop)", "loss_pct", 2, ""),
        ]
        for label, field, digits, target in rows:
            lines.append(
                f"| {label} | {_num(stats['roost'].get(field), digits)} "
                f"| {_num(stats['mosquitto'].get(field), digits)} | {target} |"
            )
        lines.append("")
    lines.extend(workers_tables(results))
    lines.extend(durable_tables(results))
    lines.extend(amqtt_tables(results))
    cap = results.get("capacity", {})
    if cap:
        lines.append("### Load generator capacity (against bench.sink, a do-nothing MQTT peer)")
        lines.append("")
        lines.append("| direction | msg/s | generator CPU (cores) | sink CPU (cores) |")
        lines.append("|---|---:|---:|---:|")
        for cell in cap.values():
            med = cell["median"]
            rate = med.get("published_per_s") or med.get("delivered_per_s")
            cpu = med.get("gen_pub_cpu") or med.get("gen_sub_cpu")
            lines.append(
                f"| {cell['title']} | {_num(rate)} | {_num(cpu, 2)} | {_num(med.get('broker_cpu'), 2)} |"
            )
        lines.append("")
    lines.append("### Generator CPU during each cell (cores: publishers / subscribers)")
    lines.append("")
    lines.append("| cell | with Roost | with mosquitto | broker CPU Roost / mosquitto |")
    lines.append("|---|---:|---:|---:|")
    for key, cell in results["cells"].items():
        if cell["kind"] not in ("throughput", "overload"):
            continue
        r, q = _m(results, key, "roost"), _m(results, key, "mosquitto")
        lines.append(
            f"| {cell['title']} | {_num(r.get('gen_pub_cpu'), 2)} / {_num(r.get('gen_sub_cpu'), 2)} "
            f"| {_num(q.get('gen_pub_cpu'), 2)} / {_num(q.get('gen_sub_cpu'), 2)} "
            f"| {_num(r.get('broker_cpu'), 2)} / {_num(q.get('broker_cpu'), 2)} |"
        )
    lines.append("")
    return "\n".join(lines)


DURABLE_LABELS = {
    "roost-sync": 'Roost, `durability = "sync"`',
    "roost-memory": 'Roost, `durability = "memory"`',
    "mosquitto-persist": "mosquitto, `persistence true`",
}


def durable_tables(results: dict[str, Any]) -> list[str]:
    """Durable QoS 1: one row per broker set-up, then the ratios (sync / memory: target ≥ 0.5)."""
    lines: list[str] = []
    for key, cell in results["cells"].items():
        if cell["kind"] != "durable":
            continue
        lines.append(f"### {cell['title']}")
        lines.append("")
        lines.append(
            "| broker | delivered msg/s | loss | msg/CPU-s | broker CPU (cores) "
            "| generator CPU pub / sub | storage bytes written per msg "
            "| acks per commit | commit ms mean / max |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, label in DURABLE_LABELS.items():
            if name not in cell:
                continue
            d = _m(results, key, name)
            commit = "-"
            if d.get("commit_ms_mean") is not None:
                commit = f"{_num(d.get('commit_ms_mean'), 1)} / {_num(d.get('commit_ms_max'), 1)}"
            lines.append(
                f"| {label} | {_num(d.get('delivered_per_s'))} | {_pct(d.get('loss'))} "
                f"| {_num(d.get('msgs_per_broker_cpu_s'))} | {_num(d.get('broker_cpu'), 2)} "
                f"| {_num(d.get('gen_pub_cpu'), 2)} / {_num(d.get('gen_sub_cpu'), 2)} "
                f"| {_num(d.get('disk_bytes_per_msg'))} | {_num(d.get('acked_per_commit'), 1)} "
                f"| {commit} |"
            )
        lines.append("")
        lines.append("| ratio | delivered msg/s | msg/CPU-s | target |")
        lines.append("|---|---:|---:|---|")
        pairs = [
            ("roost-sync", "roost-memory", "≥ 0.5x (delivered msg/s)"),
            ("roost-sync", "mosquitto-persist", ""),
            ("roost-memory", "mosquitto-persist", ""),
        ]
        for a, b, target in pairs:
            if a not in cell or b not in cell:
                continue
            ma, mb = _m(results, key, a), _m(results, key, b)
            lines.append(
                f"| {DURABLE_LABELS[a]} / {DURABLE_LABELS[b]} "
                f"| {_ratio(ma.get('delivered_per_s'), mb.get('delivered_per_s'))} "
                f"| {_ratio(ma.get('msgs_per_broker_cpu_s'), mb.get('msgs_per_broker_cpu_s'))} "
                f"| {target} |"
            )
        lines.append("")
    return lines


def workers_tables(results: dict[str, Any]) -> list[str]:
    """Roost with two worker processes (`--workers 2`) beside mosquitto and beside one
    Roost process, where it ran: the throughput and idle-connection cells."""
    ran = [(k, c) for k, c in results["cells"].items() if "roost-w2" in c]
    if not ran:
        return []
    lines = ["### Two worker processes (`roost serve --workers 2`)", ""]
    pubsub = [(k, c) for k, c in ran if c["kind"] == "throughput"]
    if pubsub:
        lines.append(
            "| cell | Roost x2 msg/s | mosquitto msg/s | ratio | Roost x2 / Roost x1 "
            "| Roost x2 loss | Roost x2 CPU (cores) | Roost x2 msg/CPU-s |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for key, cell in pubsub:
            w, r = _m(results, key, "roost-w2"), _m(results, key, "roost")
            q = _m(results, key, "mosquitto")
            lines.append(
                f"| {cell['title']} | {_num(w.get('delivered_per_s'))} "
                f"| {_num(q.get('delivered_per_s'))} "
                f"| {_ratio(w.get('delivered_per_s'), q.get('delivered_per_s'))} "
                f"| {_ratio(w.get('delivered_per_s'), r.get('delivered_per_s'))} "
                f"| {_pct(w.get('loss'))} | {_num(w.get('broker_cpu'), 2)} "
                f"| {_num(w.get('msgs_per_broker_cpu_s'))} |"
            )
        lines.append("")
    lines.extend(_idle_tables(results, ran, ("roost-w2", "Roost x2"), ("mosquitto", "mosquitto")))
    return lines


def amqtt_tables(results: dict[str, Any]) -> list[str]:
    """Roost vs amqtt where amqtt ran: 64 B point-to-point and 1,000 idle connections."""
    ran = [(k, c) for k, c in results["cells"].items() if "amqtt" in c]
    if not ran:
        return []
    version = results["machine"].get("amqtt", "amqtt")
    lines = [f"### amqtt reference ({version}, Roost / amqtt)", ""]
    pubsub = [(k, c) for k, c in ran if c["kind"] == "throughput"]
    if pubsub:
        lines.append(
            "| cell | Roost msg/s | amqtt msg/s | ratio | Roost msg/CPU-s | amqtt msg/CPU-s "
            "| ratio | Roost x2 msg/s | ratio | amqtt loss | target |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for key, cell in pubsub:
            r, a = _m(results, key, "roost"), _m(results, key, "amqtt")
            w = _m(results, key, "roost-w2")
            target = "≥ 50x (msg/s)" if key.startswith("p2p") else ""
            lines.append(
                f"| {cell['title']} | {_num(r.get('delivered_per_s'))} "
                f"| {_num(a.get('delivered_per_s'))} "
                f"| {_ratio(r.get('delivered_per_s'), a.get('delivered_per_s'), 1)} "
                f"| {_num(r.get('msgs_per_broker_cpu_s'))} | {_num(a.get('msgs_per_broker_cpu_s'))} "
                f"| {_ratio(r.get('msgs_per_broker_cpu_s'), a.get('msgs_per_broker_cpu_s'), 1)} "
                f"| {_num(w.get('delivered_per_s'))} "
                f"| {_ratio(w.get('delivered_per_s'), a.get('delivered_per_s'), 1)} "
                f"| {_pct(a.get('loss'))} | {target} |"
            )
        lines.append("")
    lines.extend(_idle_tables(results, ran, ("roost", "Roost"), ("amqtt", "amqtt"), (3, 1)))
    return lines


def _idle_tables(
    results: dict[str, Any],
    cells: list[tuple[str, dict[str, Any]]],
    a: tuple[str, str],
    b: tuple[str, str],
    digits: tuple[int, int] = (1, 2),
) -> list[str]:
    """One idle-connections table per idle cell of `cells`: broker `a` beside broker `b`
    (each: results key, column label)."""
    ratio = "ratio" if b[0] == "mosquitto" else f"{a[1]} / {b[1]}"
    lines: list[str] = []
    for key, cell in cells:
        if cell["kind"] == "idle":
            header = f"| {cell['title']} | {a[1]} | {b[1]} | {ratio} |"
            ma, mb = _m(results, key, a[0]), _m(results, key, b[0])
            lines.extend(_idle_table(header, ma, mb, digits, False))
    return lines


def overload_summary(med: dict[str, Any]) -> dict[str, float]:
    series = med.get("series") or []
    if not series:
        return {}
    rates = [s["delivered_per_s"] for s in series]
    rss = [s["broker_rss"] for s in series]
    tail = rates[-10:]
    half = len(rss) // 2
    out = {
        "peak": max(rates),
        "tail": sum(tail) / len(tail),
        "rss_max_mib": max(rss) / 2**20,
        "rss_growth_mib": (max(rss[half:]) - max(rss[: max(1, half)])) / 2**20,
    }
    out["tail_ratio"] = out["tail"] / out["peak"] if out["peak"] else 0.0
    if med.get("loss") is not None:
        out["loss_pct"] = 100 * float(med["loss"])
    return out


def write(results: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.json"
    md_path = out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    md_path.write_text(
        f"# Roost benchmark ({results['profile']['name']})\n\n"
        f"Command: `{results['command']}`\n\n{markdown(results)}"
    )
    return json_path, md_path


def update_doc(doc: Path, results: dict[str, Any]) -> bool:
    """Replace the table between the bench markers in docs/performance.md."""
    if not doc.exists():
        return False
    text = doc.read_text()
    if DOC_BEGIN not in text or DOC_END not in text:
        return False
    head, rest = text.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    body = f"{DOC_BEGIN}\n\nCommand: `{results['command']}`\n\n{markdown(results)}\n{DOC_END}"
    doc.write_text(head + body + tail)
    return True
