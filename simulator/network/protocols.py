"""The protocol cost model: what a collective costs beyond its bytes on the wires.

Semantics (docs/network.md, "Protocols and the cost model")
----------------------------------------------------------
A collective runs with one *protocol*: NCCL's ``LL``, ``LL128`` or ``Simple``, or
``ideal`` (the wires alone). A protocol charges

- a **base latency**, once per collective (launching it, its first synchronisation);
- a **hop latency** for every hop of the algorithm (one GPU handing data to the next),
  by the hop's tier: ``inter_block`` if the hop's route crosses an ``inter_block`` link,
  else ``intra_block``. It adds to the route's own link latencies;

Costs are given for two tiers, as NCCL's model distinguishes links inside a node (NVLink)
from the network between nodes. In a nested topology (nodes in racks in sites,
:mod:`simulator.cluster.levels`) the innermost tier (``intra_L0``) costs as ``intra_block``
and every ``inter_`` tier (``inter_node``, ``inter_rack``, ...) as ``inter_block``
(:func:`cost_tier`).
- a **bandwidth efficiency** per tier: a link of that tier carries at most
  ``efficiency x bandwidth`` of payload (LL sends a flag with every 4 bytes of data,
  LL128 with every 120 of 128; NCCL itself rates an A100 NVLink at 20 of its 25 GB/s);
- optionally a **bus-bandwidth ceiling** per tier (``max_busbw``): the GPU side of the
  protocol cannot move data faster, whatever the wires allow; a collective whose
  transfers cross a tier is held below the lowest ceiling of the tiers it crosses.

``ideal`` charges nothing: no latency beyond the links', efficiency 1, no ceiling.

The defaults are NCCL's own tuning model (``src/graph/tuning.cc`` of NVIDIA/nccl, the
constants for Ampere GPUs and ring algorithms; the NVLink and NIC rates of
``src/graph/topo.h`` and ``src/graph/search.cc``), and describe an A100 NVLink fabric
inside blocks and HDR InfiniBand between them; docs/network.md lists each value with its
source. A topology's ``collectives`` section overrides any of them, per protocol and per
tier (:mod:`simulator.cluster.collectives_spec` reads it into the graph attribute
``collectives``; :func:`collective_model` merges it over these defaults).

``auto`` chooses, per message size, the algorithm and protocol whose modelled time is
smallest; if the topology gives ``thresholds`` (``LL`` up to one size, ``LL128`` up to
another, ``Simple`` above), the protocol follows them and only the algorithm is chosen.
"""

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from ..utils.errors import InputError

__all__ = ["PROTOCOLS", "IDEAL", "TierCost", "ProtocolCost", "InSwitchCost", "TreeCost",
           "CollectiveModel",
           "DEFAULTS", "collective_model", "protocol_for_size", "cost_tier"]

PROTOCOLS = ("LL", "LL128", "Simple")
"""NCCL's protocols, from lowest latency to highest bandwidth."""
IDEAL = "ideal"
"""The protocol that charges nothing: the flow model of the wires alone."""
_TIERS = ("intra_block", "inter_block")


def cost_tier(tier):
    """The cost tier of a link tier: ``intra_block`` for the innermost (``intra_*``),
    ``inter_block`` for every ``inter_*`` tier.

    >>> cost_tier("intra_node"), cost_tier("inter_rack"), cost_tier("inter_block")
    ('intra_block', 'inter_block', 'inter_block')
    """
    return "intra_block" if tier.startswith("intra_") else "inter_block"

# NCCL src/graph/tuning.cc, ncclTunerConstantsDefaults: baseLatencies (ring row, us),
# hwLatencies (ring; NVLINK for links inside a block, NET between blocks, us) and llMaxBws
# (Ampere one node; Intel CPUs two nodes, GB/s). Efficiencies: Simple = NCCL's rate of a link
# over its line rate (SM80_NVLINK_BW 20.0 GB/s per 25 GB/s NVLink3 lane, topo.h; a 25 GB/s
# HDR NIC searched at 24.0 GB/s, speedArrayInter in search.cc); LL = Simple x 0.5 and
# LL128 = Simple x 0.92, the factors tuning.cc applies to ring bus bandwidth.
DEFAULTS = MappingProxyType({
    "LL": {"base_latency": 6.6e-6,
           "intra_block": {"hop_latency": 0.6e-6, "efficiency": 0.4, "max_busbw": 87.7e9},
           "inter_block": {"hop_latency": 2.7e-6, "efficiency": 0.48, "max_busbw": 39.0e9}},
    "LL128": {"base_latency": 14.0e-6,
              "intra_block": {"hop_latency": 1.9e-6, "efficiency": 0.736},
              "inter_block": {"hop_latency": 4.0e-6, "efficiency": 0.8832}},
    "Simple": {"base_latency": 8.4e-6,
               "intra_block": {"hop_latency": 3.4e-6, "efficiency": 0.8},
               "inter_block": {"hop_latency": 14.0e-6, "efficiency": 0.96}},
    # NVLink SHARP in NCCL: latency 25 us (hwLatencies NVLINK, NVLS, Simple; base 0), and
    # nvlsEfficiency 0.85 (Hopper) on top of Simple's link efficiency.
    "in_switch": {"latency": 25e-6, "efficiency": 0.85},
    # NCCL's tree all-reduce: bus bandwidth x 0.92, and at most perChMaxTreeBws per channel
    # (Ampere: 24.0 GB/s on one node, 23.6 across nodes).
    "tree": {"efficiency": 0.92, "intra_block": {"channel_busbw": 24.0e9},
             "inter_block": {"channel_busbw": 23.6e9}},
})
"""Default costs, in base units, laid out like a topology's ``collectives.protocols``."""


@dataclass(frozen=True)
class TierCost:
    """What a protocol charges on one tier. Seconds, a fraction, bytes/s."""

    hop_latency_s: float = 0.0
    efficiency: float = 1.0
    max_busbw_Bps: float = math.inf


@dataclass(frozen=True)
class ProtocolCost:
    """One protocol's costs: a base latency and a :class:`TierCost` per tier."""

    name: str
    base_latency_s: float
    tiers: MappingProxyType

    def tier(self, name):
        """The :class:`TierCost` of tier `name` (``intra_block`` or ``inter_block``)."""
        return self.tiers[name]

    def capacity_factor(self):
        """``{tier: efficiency}``, for :class:`~simulator.network.flows.Network`."""
        return {name: cost.efficiency for name, cost in self.tiers.items()}

    def max_busbw_Bps(self, tiers):
        """The lowest bus-bandwidth ceiling among `tiers` (inf: none)."""
        return min([self.tiers[t].max_busbw_Bps for t in tiers], default=math.inf)


@dataclass(frozen=True)
class InSwitchCost:
    """In-switch reduction (NVLink SHARP style): a latency that replaces the protocol's base
    and hop latencies, and an efficiency that multiplies Simple's link efficiencies."""

    latency_s: float = 0.0
    efficiency: float = 1.0


@dataclass(frozen=True)
class TreeCost:
    """The tree algorithm's own costs: an efficiency on top of the protocol's, and a
    bus-bandwidth ceiling per channel for each tier (bytes/s)."""

    efficiency: float = 1.0
    channel_busbw_Bps: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def ceiling_Bps(self, channels, tiers):
        """The tree's bus-bandwidth ceiling over `channels` crossing `tiers` (inf: none)."""
        return channels * min([self.channel_busbw_Bps.get(t, math.inf) for t in tiers],
                              default=math.inf)


IDEAL_COST = ProtocolCost(IDEAL, 0.0, MappingProxyType({t: TierCost() for t in _TIERS}))


@dataclass(frozen=True)
class CollectiveModel:
    """A topology's collective settings: protocol costs, channels, rings, thresholds.

    Attributes
    ----------
    protocols : mapping
        ``{name: ProtocolCost}`` for LL, LL128 and Simple.
    in_switch : InSwitchCost
    tree : TreeCost
    channels : int or None
        Channels of ring and tree algorithms; None: from the topology (see
        :func:`simulator.network.channels.default_channels`).
    channel_nics : tuple of int or None
        For each channel, the index of the NIC it uses in every block (a rail); None: channel
        ``c`` uses NIC ``c mod k`` of a block with ``k`` NICs.
    rings : tuple of tuple of str or None
        Ring orders given by the topology, each used in both directions (two channels).
    thresholds : mapping or None
        ``{"LL": bytes, "LL128": bytes}``: ``auto`` uses LL up to the first size, LL128 up to
        the second, Simple above; None: the cheapest protocol by the model.
    default_protocol : str
        What a protocol of ``auto`` means on this topology: ``auto`` (choose), or one
        protocol for every collective (``ideal``: the wires alone).
    """

    protocols: MappingProxyType
    in_switch: InSwitchCost = InSwitchCost()
    tree: TreeCost = field(default_factory=TreeCost)
    channels: int | None = None
    channel_nics: tuple | None = None
    rings: tuple | None = None
    thresholds: MappingProxyType | None = None
    default_protocol: str = "auto"
    overridden: frozenset = field(default_factory=frozenset)

    def protocol(self, name):
        """The :class:`ProtocolCost` called `name` (``ideal`` included).

        Raises
        ------
        InputError
            For a name that is not a protocol.
        """
        if name == IDEAL:
            return IDEAL_COST
        if name not in self.protocols:
            raise InputError(f"unknown protocol {name!r}", field="protocol",
                             fix="use one of " + ", ".join((*PROTOCOLS, IDEAL, "auto")))
        return self.protocols[name]

    def with_protocol(self, name, cost):
        """A copy whose protocol `name` costs `cost` (calibration)."""
        protocols = dict(self.protocols)
        protocols[name] = cost
        return replace(self, protocols=MappingProxyType(protocols))


def _protocol_cost(name, base, override):
    """A ProtocolCost from the defaults `base` with `override` (both in base units) on top."""
    override = override or {}
    tiers = {}
    for tier in _TIERS:
        spec = {**base.get(tier, {}), **override.get(tier, {})}
        tiers[tier] = TierCost(hop_latency_s=float(spec.get("hop_latency", 0.0)),
                               efficiency=float(spec.get("efficiency", 1.0)),
                               max_busbw_Bps=float(spec.get("max_busbw", math.inf)))
    return ProtocolCost(name, float(override.get("base_latency", base["base_latency"])),
                        MappingProxyType(tiers))


def collective_model(graph):
    """The collective settings of `graph`: :data:`DEFAULTS` with the topology's on top.

    Parameters
    ----------
    graph : networkx.Graph
        A topology; its optional graph attribute ``collectives`` (base units, the layout of
        the topology file's ``collectives`` section) overrides the defaults.

    Returns
    -------
    CollectiveModel

    Examples
    --------
    >>> import networkx as nx
    >>> model = collective_model(nx.Graph())
    >>> model.protocol("Simple").tier("inter_block").efficiency
    0.96
    >>> g = nx.Graph(collectives={"protocols": {"LL": {"base_latency": 1e-6}}, "channels": 2})
    >>> collective_model(g).protocol("LL").base_latency_s, collective_model(g).channels
    (1e-06, 2)
    """
    spec = graph.graph.get("collectives") or {}
    given = spec.get("protocols") or {}
    protocols = {name: _protocol_cost(name, DEFAULTS[name], given.get(name)) for name in PROTOCOLS}
    switch = {**DEFAULTS["in_switch"], **(given.get("in_switch") or {})}
    tree_given = given.get("tree") or {}
    tree = TreeCost(float(tree_given.get("efficiency", DEFAULTS["tree"]["efficiency"])),
                    MappingProxyType({t: float({**DEFAULTS["tree"][t], **tree_given.get(t, {})}
                                               ["channel_busbw"]) for t in _TIERS}))
    thresholds = spec.get("thresholds")
    return CollectiveModel(
        protocols=MappingProxyType(protocols),
        in_switch=InSwitchCost(float(switch["latency"]), float(switch["efficiency"])),
        tree=tree,
        channels=spec.get("channels"),
        channel_nics=None if spec.get("channel_nics") is None else tuple(spec["channel_nics"]),
        rings=None if spec.get("rings") is None else tuple(tuple(r) for r in spec["rings"]),
        thresholds=None if thresholds is None else MappingProxyType(dict(thresholds)),
        default_protocol=spec.get("protocol", "auto"),
        overridden=frozenset(given))


def protocol_for_size(thresholds, nbytes):
    """The protocol `thresholds` name for a message of `nbytes`.

    Examples
    --------
    >>> [protocol_for_size({"LL": 65536, "LL128": 2**22}, n) for n in (1e3, 1e5, 1e7)]
    ['LL', 'LL128', 'Simple']
    """
    if nbytes <= thresholds.get("LL", -math.inf):
        return "LL"
    if nbytes <= thresholds.get("LL128", -math.inf):
        return "LL128"
    return "Simple"
