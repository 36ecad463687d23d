"""``synthembed inspect``: what a saved synthembed file holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from synthembed.cli._common import DebugOpt, JsonOpt, QuietOpt, VersionOpt, emit, fail_cleanly

__all__ = ["register"]

EXAMPLE = (
    "Example: synthembed inspect items.safetensors --json  (any file written by "
    "synthembed.save: a layer, a vocabulary, vectors, a fitted encoder)"
)


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A configuration made printable: long lists are summarised."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) > 20:
            return f"<{len(value)} items>"
        return [_json_safe(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def inspect(
    model: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A file written by synthembed.save."),
    ],
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Type, configuration, sizes and memory report of a saved synthembed object."""
    from torch import nn

    import synthembed

    with fail_cleanly(debug):
        obj = synthembed.load(model)
    config = obj.get_config() if hasattr(obj, "get_config") else {}
    result: dict[str, Any] = {
        "file": str(model),
        "file_bytes": model.stat().st_size,
        "type": type(obj).__name__,
        "config": _json_safe(config),
    }
    report = None
    if isinstance(obj, nn.Module):
        params = list(obj.parameters())
        result["parameters"] = sum(p.numel() for p in params)
        result["tensors"] = {
            name: {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
            for name, t in obj.state_dict().items()
        }
        report = synthembed.memory_report(obj)
        result["memory"] = {
            "parameter_bytes": report.parameter_bytes,
            "buffer_bytes": report.buffer_bytes,
            "total_bytes": report.total_bytes,
            "full_float32_bytes": report.full_float32_bytes,
            "compression_ratio": report.compression_ratio,
        }
    elif hasattr(obj, "__len__"):
        result["size"] = len(obj)

    def lines() -> list[str]:
        out = [f"{model}: {result['type']} ({result['file_bytes']:,} bytes on disk)"]
        for key, value in result["config"].items():
            out.append(f"  {key}: {value}")
        if "parameters" in result:
            out.append(f"parameters: {result['parameters']:,}")
        if "size" in result:
            out.append(f"size: {result['size']:,}")
        if report is not None:
            out.append(str(report))
        return out

    emit(result, as_json, lines, quiet)


def register(app: typer.Typer) -> None:
    """Add ``inspect`` to the ``synthembed`` command."""
    app.command("inspect", epilog=EXAMPLE)(inspect)
