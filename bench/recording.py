"""What every benchmark script records or reads the same way: the machine, peak memory,
BENCHMARKS.md, and the numbered folders (artifacts, serving versions) of a run."""
from __future__ import annotations

import os
import platform
import resource
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"


def numbered(folder: Path) -> List[Path]:
    """The sub-folders named by a number (TFX artifact ids, serving versions), oldest first."""
    return sorted((p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB"


def peak_rss_mib() -> float:
    """The larger of this process's peak and its largest finished child's (Beam workers, fresh processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def append_section(lines: List[str]) -> None:
    """Appends markdown lines to BENCHMARKS.md (newest last)."""
    if not BENCHMARKS.exists():
        BENCHMARKS.write_text("# Benchmarks\n\nProduced by the scripts in `bench/`; newest last.\n")
    with BENCHMARKS.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
