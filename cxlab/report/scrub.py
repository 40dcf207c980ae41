"""One scrubber for secret parameter values, used by every writer of a run.

A parameter is secret when the run config lists it under ``secret:``, when the notebook's
parameters cell comments it ``# secret ...``, or when its name contains ``secret``,
``password`` or ``token``. Its value must reach no output: the executed ``.ipynb``, the HTML,
``index.html``, ``manifest.json`` and the lines ``cxlab run`` writes to stderr.

A value can reach an output in many spellings, so :class:`Scrubber` replaces each of these
forms of each value with ``•••``:

* raw; ``repr()`` and ``str.encode('unicode_escape')`` forms (quotes and backslashes escaped);
* JSON-escaped (``\\"``, ``\\\\``, ``\\u00e9``: how a value sits inside an ``.ipynb`` or a manifest);
* HTML-escaped (``&amp;``, ``&quot;``, ``&#x27;``, ``&#39;``), also of the JSON and repr forms;
* URL-encoded (``%40``, ``+`` for spaces), with and without ``/`` and ``:`` kept;
* for a URL with a password (``scheme://user:password@host``), the password alone.

Values shorter than :data:`MIN_SECRET_LENGTH` characters are not searched for in free text (a
2-letter value would blank every word containing it); they are still masked wherever the
parameter itself is shown.
"""

from __future__ import annotations

import html
import json
import urllib.parse
from typing import Any, Iterable

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SECRET_WORDS", "Scrubber", "is_secret_name"]

MASK = "\u2022\u2022\u2022"  # •••
MIN_SECRET_LENGTH = 4
#: a parameter whose name contains one of these words is secret even if not declared
SECRET_WORDS = ("secret", "password", "token")


def is_secret_name(name: str, declared: Iterable[str] = ()) -> bool:
    """Whether parameter ``name`` is secret: declared so, or its name says so."""
    return name in set(declared) or any(w in name.lower() for w in SECRET_WORDS)


def _html_forms(text: str) -> set[str]:
    out = {text, html.escape(text, quote=False), html.escape(text, quote=True)}
    q = html.escape(text, quote=True)
    out |= {q.replace("&#x27;", "&#39;"), q.replace("&quot;", "&#34;"),
            q.replace("&#x27;", "&#39;").replace("&quot;", "&#34;")}
    return out


def _code_forms(text: str) -> set[str]:
    """Forms inside source code, JSON and Python reprs."""
    out = {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    for quote in ("'", '"'):
        r = repr(text)
        if r[0] != quote:  # repr chose the other quote: build this one by hand
            r = quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote
        out.add(r[1:-1])
    out.add(text.encode("unicode_escape").decode("ascii"))
    return out


def _url_forms(text: str) -> set[str]:
    out = {text}
    for safe in ("", "/", "/:", ":/@"):
        out.add(urllib.parse.quote(text, safe=safe))
        out.add(urllib.parse.quote_plus(text, safe=safe))
    return out


def _parts(value: str) -> set[str]:
    """The value and, for a URL with credentials, its password."""
    out = {value}
    try:
        parsed = urllib.parse.urlsplit(value)
        if parsed.password:
            out.add(parsed.password)
            out.add(urllib.parse.unquote(parsed.password))
    except ValueError:
        pass
    return out


def forms(value: str) -> set[str]:
    """Every spelling of ``value`` that the scrubber removes."""
    out: set[str] = set()
    for part in _parts(value):
        for u in _url_forms(part):
            for c in _code_forms(u):
                out |= _html_forms(c)
                for h in _html_forms(u):        # HTML inside JSON (an ipynb's text/html output)
                    out |= _code_forms(h)
    return {f for f in out if len(f) >= MIN_SECRET_LENGTH}


class Scrubber:
    """Replace every form of every secret value by ``•••`` in text, JSON-like objects and
    notebooks.

    >>> s = Scrubber(["p@ss&word"])
    >>> s.scrub("url=p%40ss%26word, html=p@ss&amp;word")
    'url=•••, html=•••'
    """

    def __init__(self, values: Iterable[Any] = ()):
        self.values = sorted({str(v) for v in values if v not in (None, "")}, key=len, reverse=True)
        found: set[str] = set()
        for v in self.values:
            found |= forms(v)
        # longest first, so a form containing another is replaced whole
        self._forms = sorted(found, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._forms)

    @property
    def too_short(self) -> list[str]:
        """Secret values too short to be searched for in free text (masked only by name)."""
        return [v for v in self.values if len(v) < MIN_SECRET_LENGTH]

    def scrub(self, text: str) -> str:
        if not self._forms or not isinstance(text, str):
            return text
        for f in self._forms:
            if f in text:
                text = text.replace(f, MASK)
        return text

    def found_in(self, text: str) -> bool:
        return any(f in text for f in self._forms)

    def scrub_obj(self, obj: Any) -> Any:
        """A copy of a JSON-like object (dict, list, str, ...) with every string scrubbed,
        keys included."""
        if isinstance(obj, str):
            return self.scrub(obj)
        if isinstance(obj, dict):
            return {self.scrub(k) if isinstance(k, str) else k: self.scrub_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.scrub_obj(v) for v in obj)
        return obj

    def scrub_notebook(self, nb) -> None:
        """Scrub a notebook in place: every cell's source and outputs (text, data of every text
        MIME type, error names, values and tracebacks), attachments' names, and the metadata
        (papermill stores the parameters there)."""
        if not self._forms:
            return
        for cell in nb.cells:
            cell["source"] = self.scrub(cell.get("source", ""))
            for out in cell.get("outputs", []) or []:
                for key in ("text", "evalue", "ename", "traceback"):
                    if key in out:
                        out[key] = self.scrub_obj(out[key])
                data = out.get("data") or {}
                for mime, val in list(data.items()):
                    if isinstance(val, (str, list, dict)) and not mime.startswith("image/png") \
                            and not mime.startswith("image/jpeg"):
                        data[mime] = self.scrub_obj(val)
                if "metadata" in out:
                    out["metadata"] = self.scrub_obj(out["metadata"])
            if "metadata" in cell:
                cell["metadata"] = self.scrub_obj(cell["metadata"])
        nb["metadata"] = self.scrub_obj(nb.get("metadata", {}))

    def scrub_tree(self, folder) -> list[str]:
        """Last line of defence: scrub every text file under ``folder`` in place; returns the
        names of the files changed."""
        from pathlib import Path

        touched = []
        if not self._forms:
            return touched
        for p in sorted(Path(folder).rglob("*")):
            if not p.is_file() or p.is_symlink():
                continue
            try:
                text = p.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            new = self.scrub(text)
            if new != text:
                p.write_text(new, encoding="utf-8")
                touched.append(p.name)
        return touched
