"""Secrets end to end, and what the manifest records about a failed cell and the notebook folder.

One real `cxlab run` (module-scoped) of a tiny notebook that prints two secret parameters in
every spelling a report can carry (plain, HTML, JSON, URL-encoded, repr) and then quotes one in
an exception. No spelling may appear in any file of the run folder or on stderr. The forms
searched for are computed here with the standard library, independently of cxlab's scrubber."""

import html
import json
import re
import subprocess
import sys
import textwrap
import urllib.parse

import pytest

from cxlab.report.runner import git_commit

from test_runner import assert_valid_manifest, notebook, tiny_study

pytestmark = pytest.mark.slow

# URL-shaped, with the characters every encoding changes: @ & " and a space-free password
SECRET = 'postgres://canary:P4ss&w0rd"x@db.internal/wh?sslmode=require&app=cx'
API_KEY = "key-CANARY-<&>-7731"

PARAMS = '''
study_path: str = "study.yaml"  # the study spec
min_cell: int = 10  # smallest group shown [>= 5]
warehouse_url: str = ""  # secret: database URL
api_key: str = ""  # declared secret by the run config
'''

BODY = '''
import html, json, urllib.parse
from IPython.display import HTML, JSON, display
print("plain:", warehouse_url, api_key)
print("repr:", repr(warehouse_url), [api_key])
print("url:", urllib.parse.quote(warehouse_url, safe=""), urllib.parse.quote_plus(api_key))
display(HTML("<p>html: " + html.escape(warehouse_url) + " " + html.escape(api_key) + "</p>"))
display(JSON({"url": warehouse_url, "key": api_key}))
print(json.dumps({"url": warehouse_url}))
x = 1
raise ConnectionError(f"cannot reach {warehouse_url!r} with key {api_key}")
'''


def forms(value: str) -> set[str]:
    password = urllib.parse.urlsplit(value).password
    out = {value, html.escape(value), html.escape(value, quote=False), json.dumps(value)[1:-1],
           repr(value)[1:-1], urllib.parse.quote(value, safe=""), urllib.parse.quote(value),
           urllib.parse.quote_plus(value), urllib.parse.quote(value, safe=":/@"),
           html.escape(json.dumps(value)[1:-1]), json.dumps(html.escape(value))[1:-1]}
    if password:
        out |= {password, html.escape(password), json.dumps(password)[1:-1]}
    return out


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("secrets")
    nbs = root / "notebooks"
    nbs.mkdir()
    notebook(nbs / "01-leaky.ipynb", params=PARAMS, body=BODY)
    tiny_study(root)
    cfg = root / "run.yaml"
    cfg.write_text(textwrap.dedent("""
        name: leaky
        study: study.yaml
        out: reports
        notebooks_dir: notebooks
        secret: [api_key]
    """), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "cxlab.cli", "run", str(cfg), "--set", f"warehouse_url={SECRET}",
                           "--set", f"api_key={API_KEY}", "--verbose"], capture_output=True, text=True, timeout=600)
    runs = [p for p in (root / "reports").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(runs) == 1, proc.stderr
    return {"proc": proc, "folder": runs[0], "root": root,
            "manifest": json.loads((runs[0] / "manifest.json").read_text(encoding="utf-8"))}


def test_the_run_failed_on_the_cell_that_quotes_the_secret(secret_run):
    assert secret_run["proc"].returncode == 1
    nb = secret_run["manifest"]["notebooks"][0]
    assert nb["status"] == "failed" and nb["error"]["ename"] == "ConnectionError"
    assert_valid_manifest(secret_run["manifest"])


@pytest.mark.parametrize("value", [SECRET, API_KEY], ids=["url-secret", "config-secret"])
def test_no_form_of_a_secret_reaches_any_output_or_stderr(secret_run, value):
    texts = {p.name: p.read_text(encoding="utf-8", errors="replace")
             for p in secret_run["folder"].rglob("*") if p.is_file()}
    assert {"01-leaky.html", "01-leaky.ipynb", "index.html", "manifest.json"} <= set(texts)
    texts["stderr"] = secret_run["proc"].stderr
    leaks = [(name, f) for name, text in texts.items() for f in forms(value) if f in text]
    assert leaks == []
    assert "•••" in texts["01-leaky.html"] and "•••" in texts["stderr"]    # scrubbed, not dropped


def test_the_failure_line_on_stderr_is_scrubbed_but_still_says_what_failed(secret_run):
    line = [m for m in secret_run["proc"].stderr.splitlines() if "01-leaky: failed" in m]
    assert line and "ConnectionError: cannot reach" in line[0] and "•••" in line[0]


def test_manifest_cell_is_the_code_cell_the_html_names(secret_run):
    err = secret_run["manifest"]["notebooks"][0]["error"]
    page = (secret_run["folder"] / "01-leaky.html").read_text(encoding="utf-8")
    shown = re.search(r"code cell (\d+)", page)
    # the source notebook's code cells: the parameters cell (1) and the body (2)
    assert shown and int(shown.group(1)) == err["cell"] == 2


def test_manifest_records_the_notebook_folder_and_that_it_is_not_under_git(secret_run):
    m = secret_run["manifest"]
    assert m["config"]["notebooks_dir"] == str((secret_run["root"] / "notebooks").resolve())
    assert m["git_commit"] is None            # tmp folder: not a git checkout


def test_git_commit_describes_the_notebook_folder(tmp_path):
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "notebooks" / "01-a.ipynb").write_text("{}")

    def git(*args):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "x")
    clean = git_commit(repo / "notebooks")
    assert re.fullmatch(r"[0-9a-f]{40}", clean)
    (repo / "notebooks" / "02-new.ipynb").write_text("{}")     # an untracked notebook makes it dirty
    assert git_commit(repo / "notebooks") == clean + "-dirty"


def test_the_last_resort_scrub_catches_a_writer_that_forgot(tmp_path, monkeypatch):
    """A writer that puts a secret into the run folder unscrubbed (here: a wrapped index
    writer) is caught by the final pass over every file before the folder is published."""
    import cxlab.report.index as index
    from cxlab.report.runner import load_run_config, run

    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    notebook(nbs / "01-quiet.ipynb", params=PARAMS, body="x = 1")
    tiny_study(tmp_path)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(json.dumps({"name": "quiet", "study": "study.yaml", "out": "reports",
                               "notebooks_dir": "notebooks"}), encoding="utf-8")
    write_index = index.write_index

    def leaky_index(run_dir, manifest):
        (run_dir / "debug.txt").write_text(f"url={SECRET}\nhtml={html.escape(SECRET)}\n", encoding="utf-8")
        return write_index(run_dir, manifest)

    monkeypatch.setattr(index, "write_index", leaky_index)
    manifest = run(load_run_config(cfg), overrides=[f"warehouse_url={SECRET}"], log=lambda m: None)
    text = (tmp_path / "reports" / manifest["run_id"] / "debug.txt").read_text(encoding="utf-8")
    assert text == "url=•••\nhtml=•••\n"
