"""What the benchmarks share: the machine they ran on, named the same way (in CSV rows and file names), and the
CSV they append their rows to.

    from machine import append_csv, device_name, slug   # scripts run as `python scripts/NAME.py` find this module
"""

import csv
import platform
import re
from pathlib import Path


def device_name(threads: int, device=None) -> str:
    """A CUDA device's name, else the CPU's model and the threads the benchmark ran on.

    Args:
        threads: threads (or cores) the benchmark used, shown beside a CPU's name.
        device: a ``torch.device``; only a CUDA one changes the answer.
    """
    if device is not None and device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return f"cpu {line.split(':', 1)[1].strip()} ({threads} threads)"
    return f"cpu {platform.processor() or platform.machine()} ({threads} threads)"


def slug(name: str) -> str:
    """``name`` as a file-name part: lower case, thread count dropped (results of one machine share a file)."""
    return re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(.*?\)", "", name.lower())).strip("-")


def append_csv(rows: list[dict], path: Path) -> None:
    """Append ``rows`` to the CSV at ``path`` (the header first if the file is new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)
