"""nccl-tests output: read the table of ``all_reduce_perf``, and write one in the same layout.

The layout (NVIDIA/nccl-tests ``src/util.cu``: ``writeResultHeader``,
``writeBenchmarkLinePreamble``, ``writeBenchmarkLineBody``) is a ``#`` header block (the
options line, ``# Using devices`` with one ``#  Rank ... on HOST device ...`` line per
rank, the column names), then one row per message size::

    #       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
    #        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
         1048576        262144     float     sum      -1    80.00   13.11   22.94      0    81.00   12.95   22.66      0

out-of-place columns first, then in-place; times in microseconds, bandwidths in GB/s
(1e9 bytes/s); ``#wrong`` is ``N/A`` when results are not checked. :func:`parse_nccl_tests`
reads this layout and the older ones (no ``root`` column, an ``error`` column instead of
``#wrong``, rows or header lines behind MPI's ``[1,0]<stdout>:`` tags, stray log lines),
takes the column names from the header, and refuses output that is not ``all_reduce_perf``
(a ``Collective test starting`` line naming another test; ``redop none`` or a root; a
busbw/algbw ratio other than ``2(n-1)/n``) or has fewer than two sizes. :func:`format_nccl_tests`
writes rows in the current layout, which the parser reads back to the printed precision.
"""

import re
from dataclasses import dataclass, field

from ..utils.errors import InputError
from ..utils.files import read_input

__all__ = ["NcclTestsRun", "parse_nccl_tests", "read_nccl_tests", "format_nccl_tests",
           "float_text"]

_TAG = re.compile(r"^\s*\[\d+(?:,\d+)*\](?:<std(?:out|err)>)?:?\s?")
_DEVICE = re.compile(r"^#\s*Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)\s+device\s+(\d+)")
_STARTING = re.compile(r"^#\s*Collective test starting:\s*(\S+)")
_PLACEMENTS = ("out_of_place", "in_place")


@dataclass
class NcclTestsRun:
    """One nccl-tests output.

    Attributes
    ----------
    rows : list of dict
        ``size_bytes``, ``count``, ``type``, ``redop``, ``root``, and per placement
        (``out_of_place``, ``in_place``) a dict ``time_s``, ``algbw_Bps``, ``busbw_Bps``
        or None when that placement was not printed or not measured.
    ranks : int
        GPUs of the run (from ``# Using devices``, else from the busbw/algbw ratio).
    hosts : int or None
        Distinct host names among the devices (None: no device lines).
    gpus_per_host : int or None
    collective : str or None
        From ``# Collective test starting:`` (newer nccl-tests).
    lines : dict
        ``size_bytes -> line number`` of each row (for errors).
    """

    rows: list
    ranks: int
    hosts: int | None = None
    gpus_per_host: int | None = None
    collective: str | None = None
    lines: dict = field(default_factory=dict)

    def times(self, placement="both"):
        """``[(size_bytes, time_s), ...]`` of the measured placements (both: two per size)."""
        chosen = _PLACEMENTS if placement == "both" else (placement,)
        return [(row["size_bytes"], row[p]["time_s"]) for row in self.rows for p in chosen
                if row[p] is not None]


def _number(token):
    try:
        return float(token)
    except ValueError:
        return None


def _fail(file, line, message, fix):
    raise InputError(message, file=file, line=line, fix=fix)


_RERUN = "give the output of nccl-tests' all_reduce_perf, e.g. all_reduce_perf -b 8 -e 1G -f 2"


def parse_nccl_tests(text, file=None):
    """Parse the text of an nccl-tests ``all_reduce_perf`` run.

    Parameters
    ----------
    text : str
    file : str, optional
        Name for errors.

    Returns
    -------
    NcclTestsRun

    Raises
    ------
    InputError
        One line naming the file (and line): no table, another collective, one size only,
        a size given twice, a row that does not fit the header.

    Examples
    --------
    >>> run = parse_nccl_tests('''
    ... #       size  count  type redop root   time  algbw  busbw #wrong   time  algbw  busbw #wrong
    ...       1048576 262144 float  sum   -1  80.00  13.11  22.94      0  81.00  12.95  22.66    N/A
    ...       2097152 524288 float  sum   -1  120.0  17.48  30.58      0  125.0  16.78  29.36    N/A
    ... ''')
    >>> run.ranks, run.rows[0]["out_of_place"]["time_s"], run.times()[1]
    (8, 8e-05, (1048576.0, 8.1e-05))
    """
    columns, devices, collective = None, {}, None
    rows, lines = [], {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = _TAG.sub("", raw).rstrip()
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            body = line.lstrip()
            match = _STARTING.match(body)
            if match:
                collective = match.group(1)
            match = _DEVICE.match(body)
            if match:
                devices[int(match.group(1))] = match.group(2)
            words = body.lstrip("#").split()
            if "size" in words and "count" in words and "time" in words:
                columns = words
            continue
        tokens = line.split()
        if columns is None or not tokens or not tokens[0].isdigit():
            continue                                    # log lines, warnings, banners
        row = _row(tokens, columns, file, number)
        if row is None:
            continue
        if row["size_bytes"] in lines:
            _fail(file, number, f"size {int(row['size_bytes'])} B appears twice, first at line "
                                f"{lines[row['size_bytes']]}",
                  "give one run per file (several runs interleaved cannot be told apart)")
        lines[row["size_bytes"]] = number
        rows.append(row)
    if not rows:
        _fail(file, None, "not nccl-tests output: no result table found", _RERUN)
    first = lines[rows[0]["size_bytes"]]
    if collective is not None and collective != "all_reduce_perf":
        _fail(file, None, f"this is {collective} output, not all_reduce_perf",
              "calibrate from all_reduce_perf runs")
    for row in rows:
        if row["redop"] == "none" or (row["root"] is not None and row["root"] >= 0):
            _fail(file, lines[row["size_bytes"]], "not an all-reduce: this row has "
                  + ("no reduction" if row["redop"] == "none" else f"root {row['root']}"),
                  "calibrate from all_reduce_perf runs")
    ranks = len(devices) or None
    ratio = _ratio(rows)
    if ranks is None:
        if ratio is None or not 1 - 0.02 <= ratio < 2:
            _fail(file, first, "cannot tell how many GPUs ran it: no '# Using devices' lines and "
                               "no busbw/algbw ratio of an all-reduce", _RERUN)
        ranks = max(2, round(2 / (2 - ratio))) if ratio < 1.99 else None
        if ranks is None:
            _fail(file, first, "cannot tell how many GPUs ran it", _RERUN)
    if ranks < 2:
        _fail(file, None, f"a run of {ranks} GPU moves no data", "calibrate from runs of 2 or more GPUs")
    if ratio is not None and abs(ratio - 2 * (ranks - 1) / ranks) > 0.02 * ratio + 0.01:
        _fail(file, first, f"busbw / algbw is {ratio:.3g}, not an all-reduce over {ranks} GPUs "
                           f"({2 * (ranks - 1) / ranks:.3g})",
              "calibrate from all_reduce_perf runs")
    if len({row["size_bytes"] for row in rows}) < 2:
        _fail(file, first, "one point: a fit needs at least 2 message sizes",
              "run all_reduce_perf over a range of sizes, e.g. -b 8 -e 1G -f 2")
    hosts = len(set(devices.values())) if devices else None
    per_host = ranks // hosts if hosts and ranks % hosts == 0 else None
    return NcclTestsRun(rows, ranks, hosts, per_host, collective, lines)


def _row(tokens, columns, file, number):
    """One data row, using the column names of the header."""
    names = ["size", "count", "type", "redop", "root"]
    preamble = [c for c in columns if c in names]
    per = []                                            # column names of one placement
    for name in columns[len(preamble):]:
        if per and name == per[0]:
            break
        per.append(name)
    if "time" not in per:
        return None
    width = len(preamble) + 2 * len(per)
    if len(tokens) not in (width, len(preamble) + len(per)):
        if len(tokens) > len(preamble) and _number(tokens[0]) is not None:
            _fail(file, number, f"a row of {len(tokens)} fields under a header of {width}",
                  "give the output as nccl-tests printed it, one row per line")
        return None
    values = dict(zip(preamble, tokens))
    size = _number(values["size"])
    row = {"size_bytes": size, "count": _number(values.get("count", "nan")),
           "type": values.get("type"), "redop": values.get("redop"),
           "root": int(values["root"]) if "root" in values and values["root"].lstrip("-").isdigit()
           else None}
    rest = tokens[len(preamble):]
    parts = [rest[:len(per)], rest[len(per):]] if len(rest) == 2 * len(per) else [None, rest]
    for placement, part in zip(_PLACEMENTS, parts):
        row[placement] = None
        if part is None:
            continue
        got = dict(zip(per, part))
        time_us, algbw, busbw = (_number(got.get(k, "N/A")) for k in ("time", "algbw", "busbw"))
        if time_us is None or time_us <= 0:
            continue
        row[placement] = {"time_s": time_us / 1e6,
                          "algbw_Bps": None if algbw is None else algbw * 1e9,
                          "busbw_Bps": None if busbw is None else busbw * 1e9}
    if row["out_of_place"] is None and row["in_place"] is None:
        return None
    return row


def _ratio(rows):
    """busbw / algbw of the largest rows (rounding matters least there), or None."""
    ratios = []
    for row in sorted(rows, key=lambda r: -r["size_bytes"])[:6]:
        for placement in _PLACEMENTS:
            got = row[placement]
            if got and got["algbw_Bps"] and got["busbw_Bps"] and got["algbw_Bps"] >= 0.5e9:
                ratios.append(got["busbw_Bps"] / got["algbw_Bps"])
    return sorted(ratios)[len(ratios) // 2] if ratios else None


def read_nccl_tests(path):
    """:func:`parse_nccl_tests` of the file at `path`.

    Raises
    ------
    InputError
        A missing, unreadable or oversized file, or one that is not a regular file
        (:func:`simulator.utils.files.read_input`), or what the parser refuses. Bytes that
        are not UTF-8 (a stray byte in a log line) read as U+FFFD: the table is ASCII.
    """
    data = read_input(path)
    return parse_nccl_tests(data.decode("utf-8", errors="replace"), file=str(path))


def float_text(value, width):
    """nccl-tests' ``getFloatStr``: `value` in `width` characters, 2 decimals if they fit.

    Examples
    --------
    >>> [float_text(v, 7) for v in (76.71, 8166.8, 63929.0, 123456.0, 1.2e9)]
    ['  76.71', '8166.80', '63929.0', ' 123456', '1.2e+09']
    """
    for spec in (".2f", ".1f", ".0f"):
        text = f"{value:{width}{spec}}"
        if len(text) <= width:
            return text
    return f"{value:{width}.1e}" if width >= 7 else f"{value:{width}.0e}"


def format_nccl_tests(rows, *, ranks, hosts=("host0",), collective="all_reduce_perf",
                      gpu_name="simulated GPU", dtype="float", element_bytes=4):
    """Rows of ``(size_bytes, out_of_place_time_s, in_place_time_s)`` in nccl-tests' layout.

    Parameters
    ----------
    rows : iterable of (float, float, float or None)
        Sizes and the out-of-place and in-place times; an in-place time of None repeats
        the out-of-place one.
    ranks : int
    hosts : sequence of str
        One name per node; ranks are spread over them in order, equally.
    collective, gpu_name, dtype : str
    element_bytes : int

    Returns
    -------
    str
        The header block, the rows (``#wrong`` printed ``N/A``) and the footer.
    """
    rows = list(rows)
    factor = 2 * (ranks - 1) / ranks
    per_host = ranks // len(hosts)
    out = [f"# Collective test starting: {collective}",
           f"# nThread 1 nGpus 1 minBytes 0 maxBytes 0 step: 2(factor) warmup iters: 0 "
           f"iters: 1 agg iters: 1 validation: 0 graph: 0", "#", "# Using devices"]
    for r in range(ranks):
        host = hosts[min(r // per_host, len(hosts) - 1)]
        out.append(f"#  Rank {r:2d} Group {0:2d} Pid {1000 + r:6d} on {host:>10s} device "
                   f"{r % per_host:2d} [{0:04x}:{r % per_host:02x}:{0:02x}] {gpu_name}")
    out.append("#")
    out.append(f"# {'':>10s}  {'':>12s}  {'':>8s}  {'':>6s}  {'':>6s}           out-of-place"
               f"                       in-place          ")
    out.append(f"# {'size':>10s}  {'count':>12s}  {'type':>8s}  {'redop':>6s}  {'root':>6s}  "
               f"{'time':>7s}  {'algbw':>6s}  {'busbw':>6s}  {'#wrong':>6s}  {'time':>7s}  "
               f"{'algbw':>6s}  {'busbw':>6s}  {'#wrong':>6s} ")
    out.append(f"# {'(B)':>10s}  {'(elements)':>12s}  {'':>8s}  {'':>6s}  {'':>6s}  "
               f"{'(us)':>7s}  {'(GB/s)':>6s}  {'(GB/s)':>6s}  {'':>6s}  {'(us)':>7s}  "
               f"{'(GB/s)':>6s}  {'(GB/s)':>6s}  {'':>6s} ")
    total = 0.0
    for size, oop_s, ip_s in rows:
        ip_s = oop_s if ip_s is None else ip_s
        line = f"{int(size):12d}  {int(size) // element_bytes:12d}  {dtype:>8s}  {'sum':>6s}  " \
               f"{-1:6d}"
        for seconds in (oop_s, ip_s):
            algbw = size / 1e9 / seconds if seconds > 0 else 0.0
            line += f"  {float_text(seconds * 1e6, 7)}  {float_text(algbw, 6)}  " \
                    f"{float_text(algbw * factor, 6)}    N/A"
            total += algbw * factor
        out.append(line)
    out.append("# Out of bounds values : 0 OK")
    out.append(f"# Avg bus bandwidth    : {total / max(1, 2 * len(rows)):g} ")
    out.append("#")
    out.append(f"# Collective test concluded: {collective}")
    return "\n".join(out) + "\n"
