"""Execute one notebook with papermill (run in a subprocess by the runner).

``python -m cxlab.report.execute INPUT OUTPUT PARAMS_JSON STATUS_JSON CWD``

The subprocess isolates each notebook: the runner can enforce a whole-notebook timeout by
killing it, and a crash here never takes the run down. The status file says how it ended.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path


def _write(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str]) -> int:
    src, out, params_file, status_file, cwd = argv
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    params = json.loads(Path(params_file).read_text(encoding="utf-8"))
    status = Path(status_file)
    t0 = time.time()
    _write(status, {"status": "running", "started": t0})
    try:
        pm.execute_notebook(src, out, parameters=params, cwd=cwd, kernel_name="python3",
                            progress_bar=False, log_output=False, request_save_on_cell_execute=True)
        result = {"status": "succeeded"}
    except PapermillExecutionError as exc:
        result = {"status": "failed", "ename": exc.ename, "evalue": exc.evalue,
                  "cell": exc.exec_count, "reason": "a cell raised an error"}
    except Exception as exc:  # dead kernel, bad notebook, ...
        name = type(exc).__name__
        reason = "the kernel died (out of memory or killed)" if "DeadKernel" in name else "execution failed"
        result = {"status": "failed", "ename": name, "evalue": str(exc)[:2000], "cell": None,
                  "reason": reason, "traceback": traceback.format_exc()[-4000:]}
    result["duration_s"] = round(time.time() - t0, 3)
    _write(status, result)
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":  # pragma: no cover - exercised through the runner
    sys.exit(main(sys.argv[1:]))
