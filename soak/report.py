"""The report: a table per request class and per fault, the invariants with their counts, and a
plot of throughput and p99 over time with the fault windows shaded."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from soak.faults import Fault
from soak.invariants import Result


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def class_table(samples: list[tuple[float, str, int, float]], seconds: float) -> str:
    by: dict[str, list[tuple[float, str, int, float]]] = defaultdict(list)
    for s in samples:
        by[s[1]].append(s)
    lines = [
        f"{'request class':<22} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'4xx':>6} {'5xx':>5} {'no answer':>9}",
    ]
    for cls in sorted(by, key=lambda c: -len(by[c])):
        rows = by[cls]
        answered = [s[3] * 1000 for s in rows if s[2]]
        lines.append(
            f"{cls:<22} {len(rows):>8} {len(rows) / seconds:>7.2f} {pct(answered, 50):>8.1f} {pct(answered, 99):>8.1f}"
            f" {sum(1 for s in rows if 400 <= s[2] < 500):>6} {sum(1 for s in rows if s[2] >= 500):>5}"
            f" {sum(1 for s in rows if s[2] == 0):>9}"
        )
    answered = [s[3] * 1000 for s in samples if s[2]]
    lines.append(
        f"{'all':<22} {len(samples):>8} {len(samples) / seconds:>7.2f} {pct(answered, 50):>8.1f} {pct(answered, 99):>8.1f}"
        f" {sum(1 for s in samples if 400 <= s[2] < 500):>6} {sum(1 for s in samples if s[2] >= 500):>5}"
        f" {sum(1 for s in samples if s[2] == 0):>9}"
    )
    return "\n".join(lines)


def flow_table(flows: list[tuple[float, str, float]]) -> str:
    by: dict[str, list[float]] = defaultdict(list)
    for _, name, seconds in flows:
        by[name].append(seconds)
    lines = [f"{'flow':<30} {'count':>6} {'p50 s':>7} {'p99 s':>7} {'max s':>7}"]
    for name, values in sorted(by.items()):
        lines.append(f"{name:<30} {len(values):>6} {pct(values, 50):>7.2f} {pct(values, 99):>7.2f} {max(values):>7.2f}")
    return "\n".join(lines)


def fault_table(faults: list[Fault], samples: list[tuple[float, str, int, float]], grace: float) -> str:
    lines = [f"{'fault':<17} {'at s':>6} {'lasted s':>8} {'5xx':>5} {'no answer':>9} {'recovered in s':>14}  notes"]
    for f in faults:
        until = (f.recovered if f.recovered is not None else f.end) + grace
        inside = [s for s in samples if s[0] <= until and s[0] + s[3] >= f.start and not s[1].startswith("probe.")]
        recovery = f"{f.recovery:.1f}" if f.recovery is not None else "NOT"
        notes = ", ".join(f"{k} {v}" for k, v in f.notes.items() if k not in ("old_pids", "worker_starts"))
        failed = Counter(f"{s[1]} {s[2] or 'no answer'}" for s in inside if s[2] >= 500 or s[2] == 0)
        if failed:
            notes += ("; " if notes else "") + ", ".join(f"{k} x{n}" for k, n in failed.most_common(4))
        lines.append(
            f"{f.name:<17} {f.start:>6.0f} {f.end - f.start:>8.1f} {sum(1 for s in inside if s[2] >= 500):>5}"
            f" {sum(1 for s in inside if s[2] == 0):>9} {recovery:>14}  {notes}"
        )
    return "\n".join(lines)


def invariant_lines(results: list[Result]) -> str:
    lines = []
    for r in results:
        mark = "ok  " if r.ok else "FAIL"
        lines.append(
            f"{mark} {r.name}: {r.violations} violations of {r.checked} checked"
            + (f" ({r.detail})" if r.detail else "")
        )
    return "\n".join(lines)


def plot(
    path: Path,
    samples: list[tuple[float, str, int, float]],
    faults: list[Fault],
    seconds: float,
    title: str,
    bucket: float = 5.0,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = int(seconds // bucket) + 1
    count = [0] * n
    errors = [0] * n
    latencies: list[list[float]] = [[] for _ in range(n)]
    for t, cls, status, s in samples:
        if cls.startswith("probe.") or cls == "stream":
            continue
        i = min(n - 1, int(t // bucket))
        count[i] += 1
        if status >= 500 or status == 0:
            errors[i] += 1
        elif status:
            latencies[i].append(s * 1000)
    xs = [i * bucket / 60 for i in range(n)]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    top.plot(xs, [c / bucket for c in count], color="#1f77b4", label="requests/s")
    top.plot(xs, [e / bucket for e in errors], color="#d62728", label="5xx or no answer /s")
    top.set_ylabel("requests/s")
    top.legend(loc="upper right", fontsize=8)
    bottom.plot(xs, [pct(v, 99) for v in latencies], color="#ff7f0e", label="p99")
    bottom.plot(xs, [pct(v, 50) for v in latencies], color="#2ca02c", label="p50")
    bottom.set_ylabel("latency ms (log)")
    bottom.set_yscale("log")
    bottom.set_xlabel("minutes")
    bottom.legend(loc="upper right", fontsize=8)
    for f in faults:
        end = f.recovered if f.recovered is not None else f.end
        for ax in (top, bottom):
            ax.axvspan(f.start / 60, max(end, f.start + 2) / 60, color="#d62728", alpha=0.12)
        top.annotate(f.name, (f.start / 60, 1.0), xycoords=("data", "axes fraction"), fontsize=7, rotation=90, va="top")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(counts: dict[str, Any]) -> str:
    return "\n".join(f"  {k}: {v}" for k, v in sorted(counts.items()))
