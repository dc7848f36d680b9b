"""Markdown tables from bench.py's JSON lines, one table per kind of benchmark, for benchmarks/RESULTS.md.

    python benchmarks/table.py out/*.jsonl        (or JSON lines on standard input)

Each input file gets its own tables (titled by the file's name where that differs from the kind), and each
table lists its records' own fields in the order bench.py wrote them; what every record repeats (device,
torch version, machine, date) is said once above the table. Data-reader rows gain `vs_training`: the reader's
images/s over the fastest training images/s recorded at the same resolution in the same input (issue 8's target:
at least 10). Training records with `top_ops` get a second table of where their time goes. Lines that are not
JSON records of bench.py (an error message, a traceback) are counted and named at the end, so a failed section
shows in the summary.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ENVIRONMENT = ("device", "torch", "machine", "cpu_threads", "date")
DROPPED = (
    "bench",
    "images_per_s_by_round",
    "peak_rss_mb",
    "top_ops",
)  # title; detail in the JSON files; own table
KEYS = ("resolution", "precision", "variant")  # what names a training record in its time breakdown


def read_records(lines) -> tuple[list[dict], list[str]]:
    """bench.py's records, and the other non-empty lines."""
    records, other = [], []
    for line in filter(None, (line.strip() for line in lines)):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and "bench" in record:
            records.append(record)
        else:
            other.append(line)
    return records, other


def add_reader_ratio(records: list[dict]) -> None:
    fastest: dict[int, float] = {}
    for r in records:
        if r["bench"] == "train":
            fastest[r["resolution"]] = max(fastest.get(r["resolution"], 0.0), r["images_per_s"])
    for r in records:
        if r["bench"] == "data" and r["resolution"] in fastest:
            r["vs_training"] = round(r["images_per_s"] / fastest[r["resolution"]], 1)


def cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False).replace("|", "\\|")
    return str(value).replace("|", "\\|")


def tables(records: list[dict], sources: list[str] | None = None) -> str:
    """One table per kind of benchmark and input (`sources[i]` names the file record i came from)."""
    add_reader_ratio(records)
    sources = sources or [""] * len(records)
    out = []
    for source, kind in dict.fromkeys((s, r["bench"]) for s, r in zip(sources, records)):
        rows = [r for s, r in zip(sources, records) if (s, r["bench"]) == (source, kind)]
        columns = list(dict.fromkeys(k for r in rows for k in r if k not in ENVIRONMENT and k not in DROPPED))
        environment = dict.fromkeys(f"{k} {r[k]}" for r in rows for k in ENVIRONMENT if k in r)
        title = kind if source in ("", kind) else f"{source}: {kind}"
        out.append(f"### {title} ({', '.join(environment)})\n")
        out += markdown(columns, [[cell(r.get(c)) for c in columns] for r in rows])
        out += time_breakdown(rows, title)
    return "\n".join(out)


def time_breakdown(rows: list[dict], title: str) -> list[str]:
    """The ops that took the most time (bench.py train --top-ops), one row per op under its record's keys."""
    rows = [r for r in rows if r.get("top_ops")]
    if not rows:
        return []
    keys = [k for k in KEYS if k in rows[0]]
    cells = [
        [cell(r[k]) for k in keys] + [cell(name), cell(ms), f"{100 * share:.1f} %"]
        for r in rows
        for name, ms, share in r["top_ops"]
    ]
    return [f"#### {title}: where the time goes\n"] + markdown(keys + ["op", "ms/iteration", "share"], cells)


def markdown(columns: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines (header, rule, rows) and the blank line after it."""
    return ["| " + " | ".join(line) + " |" for line in [columns, ["---"] * len(columns), *rows]] + [""]


def main(argv: list[str]) -> int:
    inputs = (
        [(Path(name).stem, Path(name).read_text()) for name in argv] if argv else [("", sys.stdin.read())]
    )
    records, sources, other = [], [], []
    for source, text in inputs:
        found, rest = read_records(text.splitlines())
        records += found
        sources += [source] * len(found)
        other += rest
    print(tables(records, sources))
    if other:
        print(f"{len(other)} line(s) were not benchmark records; the first: {other[0][:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
