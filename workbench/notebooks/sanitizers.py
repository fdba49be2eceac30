"""The rules that turn every volatile figure workbench displays print into a placeholder, so a
saved notebook output and a rerun's compare equal when only measurements differ, and differ when
content does (pure: regexes only).

Each rule is ``(what, regex, replacement)``; :func:`sanitize` applies them in order, the way
nbval applies a ``--nbval-sanitize-with`` file, and :func:`nbval_config` writes them as one.

>>> sanitize("convert -> x: 100%|████| 20,000/20,000 rows [00:01<00:00, 206k rows/s]")
'convert -> x: 100%|<bar>| 20,000/20,000 rows [<clock><<clock>, <rate>]'
>>> sanitize("HDF5Dataset opened in this process (pid 26487) at 0x7f3a2c1b9d60")
'HDF5Dataset opened in this process (pid <pid>) at 0x<addr>'
"""

from __future__ import annotations

import re

__all__ = ["sanitize"]

_NUM = r"[-+]?\d(?:,?\d)*(?:\.\d+)?(?:[eE][-+]?\d+)?"
_BYTES = r"(?<![\w.,])" + _NUM + r"\s?(?:[KMGTP]i?B|[kKMGTP]B|B|bytes)\b"
_WORDS = r"(?:pss|uss|rss|swap|shared|real|memory|available|free|peak|used|in use|page cache)"

# (what, regex, replacement), applied in this order: the specific forms before the general ones
RULES: list[tuple[str, str, str]] = [
    # -- progress bars (tqdm's meter, text and HTML): the bar's width follows the rate's width
    ("progress bar", r"\|(?:[█▉▊▋▌▍▎▏#]+ *| {3,})\|", "|<bar>|"),
    ("progress clock", r"\[(?:\d+:)?\d\d:\d\d(?=,|<|&lt;)", "[<clock>"),
    ("progress clock", r"(<|&lt;)(?:(?:\d+:)?\d\d:\d\d|\?)(?=,)", r"\1<clock>"),
    ("progress width", r"width:\d+(?:\.\d+)?%", "width:<pct>"),
    # -- pids, ports and dashboard links, object addresses, times of day, temporary paths
    (
        "link port",
        r"\b((?:https?|tcp|tls|ws|wss|ucx)://(?:\[[0-9a-fA-F:]+\]|[\w.-]+)):\d{1,5}\b",
        r"\1:<port>",
    ),
    ("loopback port", r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0):\d{1,5}\b", r"\1:<port>"),
    ("port", r"\b(ports?)([ =:]+)\d{2,5}\b", r"\1\2<port>"),
    ("pid", r"\b(pids?\"?)([ =:]+)\d+\b", r"\1\2<pid>"),
    ("object address", r"\b0x[0-9a-fA-F]{6,}\b", "0x<addr>"),
    (
        "timestamp",
        r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?",
        "<time>",
    ),
    ("dataset version", r"\bv-[0-9a-f]{12}\b", "v-<version>"),
    ("fingerprint", r"\b(fingerprint[\s=:]+)[0-9a-f]{8,}\b", r"\1<fingerprint>"),
    (
        "temporary path",
        r"(?:/private)?/(?:tmp|var/tmp|var/folders/[\w-]+/[\w-]+/T|dev/shm)"
        r"(?:/(?:pytest-of-[\w.-]+/pytest-\d+/[\w.-]*?\d+|tmp[\w-]{6,}|pymp-[\w-]+))?"
        r"(?=[/\s'\"),:;]|$)",
        "<tmp>",
    ),
    # -- seconds in a result's repr (``..._s=`` and ``seconds=`` by the house's naming)
    ("rate field", r"\b(\w+_per_s=)" + _NUM, r"\1<rate>"),
    ("seconds field", r"\b(seconds=|\w+_s=)" + _NUM, r"\1<duration>"),
    # -- Prometheus gauges (Monitor.to_prometheus): every value is a reading
    ("gauge", r"(?m)^(workbench_\w+(?:\{[^}\n]*\})?) \S+$", r"\1 <value>"),
    # -- compare_orders' table: rows/s, MB/s and the rounds' spread of each reader
    (
        "reader rates",
        r"(?m)\b(sequential|block|full|shard) +[\d,]+ +[\d,]+ +(?:\d+%|-) *$",
        r"\1 <rate> <rate> <pct>",
    ),
    # -- layout, not content: tables realign and paragraphs rewrap when a figure's width changes
    ("whitespace", r"\s+", " "),
    # -- compare_orders' verdict: which gather was the fastest is a measurement too
    ("fastest gather", r"(random-gather limit \([^,()]*, )[^()]+\)", r"\1<fastest>)"),
    # -- rates and durations, with or without an SI prefix
    ("rate", r"(?<![\w.])(?:" + _NUM + r"|\?)\s?[kKMGTP]?\s?[A-Za-zµ]+/s\b", "<rate>"),
    ("rate", r"(?<![\w.])" + _NUM + r"\s?s/[A-Za-z]+\b", "<rate>"),
    (
        "duration",
        r"(?<![\w.])" + _NUM + r"\s?(?:ns|[µμu]s|ms|s|sec|secs|seconds?|min|minutes?|h|hours?)"
        r"(?![\w])",
        "<duration>",
    ),
    # -- measured ratios ("0.38x [0.35x-0.41x] a memcpy", "28x seed 001's", "...; 13x")
    ("ratio spread", r"\[" + _NUM + "x-" + _NUM + r"x\]", "[<ratio>-<ratio>]"),
    (
        "ratio",
        r"(?<![\w.])" + _NUM + r"x(?=\s+\[|\s+(?:a|an|the|seed|faster|slower|of)\b|\s*\))",
        "<ratio>",
    ),
    ("ratio", r"(?<=; )" + _NUM + r"x\b", "<ratio>"),
    # -- memory and page-cache figures: bytes and shares next to a memory word
    ("memory", r"(?i)\b(" + _WORDS + r")(\W{1,3})" + _BYTES, r"\1\2<bytes>"),
    ("memory", r"(?i)" + _BYTES + r"(?= of \S+ \S+ resident| of [^()\n]* in \d+ files)", "<bytes>"),
    (
        "memory",
        r"(?i)(?<! of )" + _BYTES + r"(\s+(?:available|free|in use|resident)\b)",
        r"<bytes>\1",
    ),
    ("memory", r"(?i)\(was " + _BYTES + r"\)", "(was <bytes>)"),
    ("page cache share", r"(?i)\b(page cache\W{1,3})" + _NUM + "%", r"\1<pct>"),
    ("page cache share", r"(?<![\w.])" + _NUM + r"%(?= resident\b)", "<pct>"),
    ("wait share", r"\b(wait(?: fraction)?\s)" + _NUM + r"%?", r"\1<share>"),
    ("read-ahead", r"\b(read-ahead\s)\d+", r"\1<n>"),
]

_COMPILED = [(re.compile(regex), repl) for _, regex, repl in RULES]


def sanitize(text: str) -> str:
    """``text`` with every volatile figure replaced by its placeholder (``<rate>``, ``<pid>``...).

    Parameters
    ----------
    text : str
        An output as a notebook saves it (a stream's text or one mime type's value).

    Returns
    -------
    str
        The text with :data:`RULES` applied in order; whitespace runs become one space.
    """
    for regex, repl in _COMPILED:
        text = regex.sub(repl, text)
    return text.strip()


def nbval_config() -> str:
    """The rules as an nbval sanitize file (``regex:`` / ``replace:`` line pairs).

    Returns
    -------
    str
        What ``pytest --nbval --nbval-sanitize-with FILE`` reads; nbval applies the pairs in
        order with ``re.sub``, as :func:`sanitize` does.
    """
    return "".join(f"[{what}]\nregex: {regex}\nreplace: {repl}\n\n" for what, regex, repl in RULES)
