"""The Python API behind the CLI: everything `ptft` does is one call here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ptft.config import StudyConfig, load_config
from ptft.errors import ConfigError, naming


def run(config: str | Path | StudyConfig, *, run_dir: str | Path | None = None, executor: str | None = None,
        address: str | None = None, workers: int | None = None, progress: bool = True,
        overrides: dict[str, Any] | None = None, allow_mixed_numerics: bool = False):
    """Run a study (a config path, preset name or StudyConfig) and return its StudyRun."""
    from ptft.engine.study import run_study

    if not isinstance(config, StudyConfig):
        config = load_config(config, overrides)
    return run_study(config, run_dir=run_dir, executor=executor, address=address, workers=workers,
                     progress=progress, allow_mixed_numerics=allow_mixed_numerics)


def export(run_dir: str | Path, out: str | Path | None = None, fmt: str = "csv") -> Path:
    """Write the run's long-format results table (README: "Results table") and return its path."""
    from ptft.engine.study import results_frame

    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / f"results.{fmt}"
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give the table's file name (e.g. {out / f'results.{fmt}'})")
    df = results_frame(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with naming(out):
        if fmt == "parquet":
            df.to_parquet(out, index=False)
        else:
            df.to_csv(out, index=False)
    return out


def import_lm_eval(paths, out: str | Path, *, seed: int = 0, n_boot: int = 1000):
    """lm-evaluation-harness results files (0.4 or 0.3 layout; folders are searched) into a
    results table at ``out`` (``.csv`` / ``.parquet``, or a run directory with results.sqlite).
    Returns the :class:`ptft.lm_eval_import.ImportResult`."""
    from ptft.lm_eval_import import import_lm_eval as read, write_import

    result = read(paths, seed=seed, n_boot=n_boot)
    write_import(result, out)
    return result
