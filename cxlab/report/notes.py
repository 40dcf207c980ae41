"""Warnings and stderr in plain words, for the Checks section of a page (the raw text stays in
the executed .ipynb for analysts)."""

from __future__ import annotations

import re
from cxlab.report.formatting import esc


_WARNING_HEADER = re.compile(r"^(?:\S.*?\.py|<[^>]+>):\d+: (\w*Warning): (.*)$")


def tidy_stderr(text: str) -> str:
    """Python's ``path.py:12: UserWarning: message`` + echoed source line -> ``UserWarning:
    message``: a reviewer needs the warning, not the kernel's temp file or the code."""
    out, after_header = [], False
    for line in text.splitlines(keepends=True):
        if after_header and line.startswith("  "):
            after_header = False
            continue  # the source line Python echoes under a warning
        m = _WARNING_HEADER.match(line.rstrip("\r\n"))
        after_header = m is not None
        out.append(f"{m.group(1)}: {m.group(2)}\n" if m else line)
    return "".join(out)


_WARNING_LINE = re.compile(r"^(\w*Warning): (.*)$")


_TECHNICAL = ("FutureWarning", "DeprecationWarning", "PendingDeprecationWarning", "SyntaxWarning")


def _words(name: str) -> str:
    from cxlab.insight.narrative import human_label

    return human_label(name)


#: cxlab diagnostics whose text names code (a parameter, a column) -> the same note in words
_PLAIN_REWRITES = (
    (r"Splitting at all (\d+) event times would create (\d+) rows \(> max_rows=\d+\); "
     r"the time interaction uses (\d+) event-time quantiles instead\.",
     lambda m: (f"The effects that change with tenure were estimated with tenure cut at {int(m.group(3)):,} points "
                f"(quantiles of the defection times) rather than at each of the {int(m.group(1)):,} defection times, "
                f"which would have needed {int(m.group(2)):,} data rows: a standard approximation that keeps the "
                "model to a workable size.")),
    (r"(\d+) of (\d+) respondents have no '([^']+)' or '([^']+)' answer and are 'unclassified'\.",
     lambda m: (f"{int(m.group(1)):,} of {int(m.group(2)):,} respondents have no {_words(m.group(3))} or "
                f"{_words(m.group(4))} answer, so they are left out of the 2 × 2 grid.")),
)


def plain_note(text: str) -> dict:
    """A warning or stderr text in plain language: {text, technical, detail}.

    ``UserWarning: 1 of 200 bootstrap fits failed`` -> "1 of 200 bootstrap fits failed." (the
    analysis's own diagnostics); library deprecation notices are marked technical (they do not
    change the results); the raw text is kept as ``detail``."""
    raw = text.strip()
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    m = _WARNING_LINE.match(lines[0]) if lines else None
    if m:
        kind, msg = m.group(1), " ".join([m.group(2), *lines[1:]]).strip()
    else:
        kind, msg = "", " ".join(lines)
    # a cxlab function's "func_name: " prefix goes; a one-word prefix is kept, as it names the variable the
    # note is about ("segment: 1 level with fewer than 10 customers pooled into 'other'")
    msg = re.sub(r"^[\w.]+: ", "", msg) if re.match(r"^[a-z]\w*[_.][\w.]*: ", msg) else msg
    if not re.match(r"^[\w.]+: ", msg):   # a kept variable name stays as the study spells it
        msg = msg[:1].upper() + msg[1:]
    if msg and msg[-1] not in ".!?":
        msg += "."
    for pattern, words in _PLAIN_REWRITES:   # cxlab's own diagnostics that name code: said in words
        hit = re.fullmatch(pattern, msg)
        if hit:
            msg = words(hit)
            break
    technical = kind in _TECHNICAL
    if technical:
        msg = f"A software library reported a coming change (this does not affect the results): {msg}"
    return {"text": msg, "technical": technical, "detail": raw}


def _split_warnings(text: str) -> list[str]:
    """One chunk per warning or message: every line that is not indented starts a new one;
    indented lines (continuations) join the chunk before them."""
    chunks: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if _WARNING_LINE.match(line) or not chunks or not line[:1].isspace():
            chunks.append([line])
        else:
            chunks[-1].append(line)
    return ["\n".join(c) for c in chunks]


def checks_html(notes: list[dict]) -> str:
    """The page's one Checks section: every warning the notebook raised, in plain words, and the
    section it came from (no raw warning text: it stays in the executed .ipynb for analysts).
    Identical notes are shown once."""
    out = ['<section class="cx-box cx-checks" id="cx-checks"><h2>Checks and notes</h2>']
    seen: dict[str, dict] = {}
    for n in notes:
        seen.setdefault(n["text"], {**n, "sections": []})
        if n.get("section") and n["section"] not in seen[n["text"]]["sections"]:
            seen[n["text"]]["sections"].append(n["section"])
    if not seen:
        out.append("<p>No warning was raised while this notebook ran.</p></section>")
        return "".join(out)
    main = [n for n in seen.values() if not n["technical"]]
    tech = [n for n in seen.values() if n["technical"]]
    out.append(f"<p>{len(main)} note{'s' if len(main) != 1 else ''} from the analysis"
               + (f" and {len(tech)} technical notice{'s' if len(tech) != 1 else ''}" if tech else "")
               + " raised while the notebook ran.</p><ul>")
    for n in main + tech:
        where = f' <span class="cx-muted-text">(in: {esc(", ".join(n["sections"]))})</span>' if n["sections"] else ""
        cls = ' class="cx-note-technical"' if n["technical"] else ""
        out.append(f"<li{cls}>{esc(n['text'])}{where}</li>")   # the raw text stays in the .ipynb
    out.append("</ul></section>")
    return "".join(out)
