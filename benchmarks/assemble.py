"""Assemble BENCHMARKS.md from the sections each benchmark script writes.

Usage: ``.venv/bin/python benchmarks/assemble.py``. Each section under
``benchmarks/results/`` names the command that reproduces it; this script only
concatenates them, in a fixed order, under the summary.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ORDER = [
    "_summary.md",
    "lookup.md",
    "train_step.md",
    "memory_100m.md",
    "synthesis.md",
    "synthesis_twin.md",
    "coldstart.md",
    "default_technique.md",
    "synthesizers.md",
    "rates.md",
    "compression.md",
    "tabular.md",
    "pretrained.md",
    "vocab_speed.md",
    "subwords.md",
    "text_classification.md",
    "augmentation.md",
    "distributed.md",
    "digits.md",
]


def main() -> None:
    parts = []
    for name in ORDER:
        path = RESULTS / name
        if path.exists():
            parts.append(path.read_text(encoding="utf-8").strip())
    text = "\n\n".join(parts) + "\n"
    (ROOT / "BENCHMARKS.md").write_text(text, encoding="utf-8")
    print(f"BENCHMARKS.md: {len(parts)} sections, {len(text.splitlines())} lines")


if __name__ == "__main__":
    main()
