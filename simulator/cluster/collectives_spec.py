"""The ``collectives`` section of a topology: channels, rails, rings and protocol costs.

A topology may say how collectives run on it (docs/topology.md, "Collectives"). In a YAML
file quantities carry units; once loaded, the section is the graph attribute
``collectives``, a dict in base units with the same layout, which
:func:`simulator.network.protocols.collective_model` merges over NCCL's defaults:

```yaml
collectives:
  protocol: auto                 # auto (choose per size), LL, LL128, Simple or ideal
  channels: 8                    # channels of ring and tree algorithms
  channel_nics: [0, 1, 2, 3]     # the NIC (index among a block's NICs) of each channel
  rings: [[g0, g1, g2, g3]]      # ring orders of a direct network (each used both ways)
  thresholds: {LL: 64 KiB, LL128: 8 MiB}     # auto: LL up to, LL128 up to, Simple above
  protocols:
    Simple:
      base_latency: 8.4 us
      intra_block: {hop_latency: 3.4 us, efficiency: 0.8}
      inter_block: {hop_latency: 14 us, efficiency: 0.96, max_busbw: 200 GB/s}
    in_switch: {latency: 25 us, efficiency: 0.85}
    tree: {efficiency: 0.92, inter_block: {channel_busbw: 23.6 GB/s}}
```

Every key is optional. :func:`collectives_from_yaml` turns the written section into base
units; :func:`check_collectives` checks either form's meaning against the graph (every
name in ``rings`` a GPU, each ring naming every GPU once, ``thresholds`` in order), and
:func:`collectives_to_yaml` writes base units back as unit strings that parse to the same
numbers. A switch that reduces in the network (NVLink SHARP, InfiniBand SHARP) carries the
node attribute ``reduction: true``.
"""

import math
import numbers

from ..utils.errors import InputError
from ..utils.units import parse_bandwidth, parse_bytes, parse_time

__all__ = ["PROTOCOL_NAMES", "PROTOCOL_CHOICES", "collectives_from_yaml", "check_collectives",
           "collectives_to_yaml"]

PROTOCOL_NAMES = ("LL", "LL128", "Simple")
MAX_CHANNELS = 64         # simulator.network.channels.MAX_CHANNELS (NCCL's MAXCHANNELS)
PROTOCOL_CHOICES = ("auto", *PROTOCOL_NAMES, "ideal")
TIERS = ("intra_block", "inter_block")
# key -> (parser of the written form, unit kind for the writer)
_TIER_KEYS = {"hop_latency": (parse_time, "time"), "efficiency": (float, None),
              "max_busbw": (parse_bandwidth, "bandwidth")}
_IN_SWITCH_KEYS = {"latency": (parse_time, "time"), "efficiency": (float, None)}


def collectives_from_yaml(section, at, path=("collectives",)):
    """The written ``collectives`` `section` in base units (schema already checked).

    Parameters
    ----------
    section : dict
    at : simulator.utils.yamlfile.Places
        Locates unit errors.
    path : tuple
        Where the section is in the file.

    Returns
    -------
    dict
    """
    spec = {key: section[key] for key in ("protocol", "channels", "channel_nics")
            if key in section}
    if "rings" in section:
        spec["rings"] = [list(ring) for ring in section["rings"]]
    if "thresholds" in section:
        spec["thresholds"] = {name: at.parse(lambda v: parse_bytes(v), value,
                                             path + ("thresholds", name))
                              for name, value in section["thresholds"].items()}
    if "protocols" in section:
        protocols = {}
        for name, given in section["protocols"].items():
            where = path + ("protocols", name)
            if name == "in_switch":
                protocols[name] = {key: at.parse(_IN_SWITCH_KEYS[key][0], value, where + (key,))
                                   for key, value in given.items()}
                continue
            if name == "tree":
                tree = {key: float(value) for key, value in given.items() if key == "efficiency"}
                for tier in TIERS:
                    if tier in given:
                        tree[tier] = {"channel_busbw": at.parse(
                            parse_bandwidth, given[tier]["channel_busbw"],
                            where + (tier, "channel_busbw"))}
                protocols[name] = tree
                continue
            cost = {}
            if "base_latency" in given:
                cost["base_latency"] = at.parse(parse_time, given["base_latency"],
                                                where + ("base_latency",))
            for tier in TIERS:
                if tier in given:
                    cost[tier] = {key: at.parse(_TIER_KEYS[key][0], value, where + (tier, key))
                                  for key, value in given[tier].items()}
            protocols[name] = cost
        spec["protocols"] = protocols
    return spec


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_collectives(spec, gpus, fail):
    """Check the meaning of a ``collectives`` dict in base units.

    Parameters
    ----------
    spec : dict
    gpus : collection of str
        The topology's GPUs.
    fail : callable
        ``fail(path, message, fix)`` raises; `path` is a tuple inside the section.

    Raises
    ------
    InputError
        Through `fail`, for the first problem.
    """
    if not isinstance(spec, dict):
        fail((), "must be a mapping", "write e.g. {channels: 8}")
    protocol = spec.get("protocol", "auto")
    if protocol not in PROTOCOL_CHOICES:
        fail(("protocol",), f"unknown protocol {protocol!r}",
             "use one of " + ", ".join(PROTOCOL_CHOICES))
    channels = spec.get("channels")
    if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int)
                                 or not 1 <= channels <= MAX_CHANNELS):
        fail(("channels",), f"must be an integer from 1 to {MAX_CHANNELS}, got {channels!r}",
             f"write e.g. 8; NCCL runs at most {MAX_CHANNELS} channels")
    for i, nic in enumerate(spec.get("channel_nics") or []):
        if isinstance(nic, bool) or not isinstance(nic, int) or nic < 0:
            fail(("channel_nics", i), f"must be a NIC index >= 0, got {nic!r}",
                 "write e.g. [0, 1, 2, 3]")
    if "channel_nics" in spec and not spec["channel_nics"]:
        fail(("channel_nics",), "must name at least one NIC index", "write e.g. [0, 1]")
    known = set(gpus)
    for i, ring in enumerate(spec.get("rings") or []):
        seen = set()
        for j, name in enumerate(ring):
            if name not in known:
                fail(("rings", i, j), f"{name!r} is not a GPU of the topology",
                     "list the GPUs of the ring by name")
            if name in seen:
                fail(("rings", i, j), f"{name!r} appears twice in the ring",
                     "name each GPU once per ring")
            seen.add(name)
        if seen != known:
            missing = sorted(known - seen)[0]
            fail(("rings", i), f"the ring leaves out {missing!r}",
                 "a ring lists every GPU of the topology once")
    thresholds = spec.get("thresholds") or {}
    for name, value in thresholds.items():
        if name not in ("LL", "LL128") or not _number(value) or value < 0:
            fail(("thresholds", name), f"must be a size >= 0 for LL or LL128, got {value!r}",
                 "write e.g. {LL: 64 KiB, LL128: 8 MiB}")
    if thresholds.get("LL", 0) > thresholds.get("LL128", math.inf):
        fail(("thresholds", "LL128"), "the LL128 threshold is below the LL one",
             "LL is used up to the first size, LL128 up to the second: give LL <= LL128")
    for name, cost in (spec.get("protocols") or {}).items():
        where = ("protocols", name)
        if name not in (*PROTOCOL_NAMES, "in_switch", "tree"):
            fail(where, f"unknown protocol {name!r}", "use LL, LL128, Simple, in_switch or tree")
        items = cost.items() if name == "in_switch" else \
            [(key, value) for key, value in cost.items() if key in ("base_latency", "efficiency")] + \
            [((tier, key), value) for tier in TIERS for key, value in cost.get(tier, {}).items()]
        for key, value in items:
            field = key if isinstance(key, tuple) else (key,)
            last = field[-1]
            if not _number(value):
                fail(where + field, f"expected a number, got {value!r}",
                     "store a plain number in base units")
            if last == "efficiency" and not 0 < value <= 1:
                fail(where + field, f"must be in (0, 1], got {value!r}", "write e.g. 0.8")
            if last in ("base_latency", "hop_latency", "latency") and value < 0:
                fail(where + field, f"must not be negative, got {value!r} s", "write e.g. 1e-06")
            if last in ("max_busbw", "channel_busbw") and value <= 0:
                fail(where + field, f"must be positive, got {value!r} bytes/s",
                     "write e.g. 87.7e9")


def collectives_to_yaml(spec, quantity_text):
    """The ``collectives`` dict `spec` with unit strings, for writing a YAML file.

    Parameters
    ----------
    spec : dict
        Base units.
    quantity_text : callable
        ``quantity_text(value, kind)``, kind ``time``, ``bandwidth`` or ``bytes``: the
        shortest unit string that parses back to `value`.

    Returns
    -------
    dict
    """
    written = {key: spec[key] for key in ("protocol", "channels", "channel_nics", "rings")
               if key in spec}
    if "thresholds" in spec:
        written["thresholds"] = {k: quantity_text(v, "bytes") for k, v in spec["thresholds"].items()}
    if "protocols" in spec:
        protocols = {}
        for name, cost in spec["protocols"].items():
            if name == "in_switch":
                protocols[name] = {k: (quantity_text(v, _IN_SWITCH_KEYS[k][1])
                                       if _IN_SWITCH_KEYS[k][1] else float(v))
                                   for k, v in cost.items()}
                continue
            if name == "tree":
                protocols[name] = {k: ({"channel_busbw": quantity_text(v["channel_busbw"],
                                                                       "bandwidth")}
                                       if isinstance(v, dict) else float(v))
                                   for k, v in cost.items()}
                continue
            out = {}
            if "base_latency" in cost:
                out["base_latency"] = quantity_text(cost["base_latency"], "time")
            for tier in TIERS:
                if tier in cost:
                    out[tier] = {k: (quantity_text(v, _TIER_KEYS[k][1]) if _TIER_KEYS[k][1]
                                     else float(v)) for k, v in cost[tier].items()}
            protocols[name] = out
        written["protocols"] = protocols
    return written


def _error(file, where):
    """A `fail` for :func:`check_collectives` raising InputError via `where(path) -> kwargs`."""
    def fail(path, message, fix):
        raise InputError(message, fix=fix, **where(path))
    return fail
