"""Nested groups of GPUs (GPUs in nodes, nodes in racks, racks in sites) and the tiers they name.

Semantics (docs/semantics.md, "The graph" and "Tier rule")
----------------------------------------------------------
A topology has one or more **levels** of groups, innermost first. The innermost level is
the *block* level: every GPU carries its block in the node attribute ``block``. Each outer
level groups the groups of the level below it: a device inside a group of outer level
``L`` carries the group's name in the node attribute ``L`` (``rack: rack0``). The graph
attribute ``levels`` lists the level names innermost first, separated by spaces
(``"node rack site"``); without it the topology has the one level ``block`` — every
two-level file (GPUs in blocks behind a core) is such a topology, unchanged.

Groups nest: every block lies in exactly one group of the next level, and so on up; a GPU
carries every level, a switch or NIC the levels of the innermost group it belongs to and
all above it (a rack's switch carries ``rack`` and ``site``, not ``block``). Group names
are unique across levels.

**Tiers.** With levels ``L0, L1, ..., Ln`` the tiers are ``intra_L0`` (a link inside one
block) and ``inter_Lk`` for every level: a link whose ends share a group of level
``L(k+1)`` but not of ``Lk`` crosses the boundary of ``Lk`` groups and is ``inter_Lk``; a
link whose ends share no group at all is ``inter_Ln``. With the single level ``block``
this is the two-level rule: ``intra_block`` if both ends are in one block, else
``inter_block``. A group of GPUs (the members of a collective) gets a tier by the same
rule: ``intra_L0`` if they are all in one block, else ``inter_Lk`` for the outermost level
whose groups it spans.

Level names are lower-case identifiers (``node``, ``rack``, ``site``), unique, and not one
of :data:`RESERVED` (names the graph, the schedules or the networkx file formats already
use).
"""

import re

from ..utils.errors import InputError
from ..utils.yamlfile import did_you_mean

__all__ = ["DEFAULT_LEVELS", "RESERVED", "graph_levels", "graph_tiers", "group_path",
           "tier_between", "group_tier", "check_level_names", "level_groups",
           "level_sizes", "block_sort_key"]

DEFAULT_LEVELS = ("block",)
"""The levels of a topology whose graph has no ``levels`` attribute."""

RESERVED = frozenset({
    "kind", "block", "peak_flops", "efficiency", "gpu_type", "name", "description",
    "bandwidth", "latency", "tier", "levels", "equal_blocks", "group", "global", "gradient",
    "id", "label", "source", "target", "node", "edge", "graph", "directed", "multigraph",
    "key", "nodes", "links", "edges"})
"""Names an outer level may not take (attribute names of the graph contract and of the
networkx formats, and the schedules' ``global`` and ``gradient``). The block level is
never an attribute, so it may be called ``node`` or ``block``, but not ``global`` or
``gradient``."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def graph_levels(graph):
    """The level names of `graph`, innermost (the block level) first.

    Examples
    --------
    >>> import networkx as nx
    >>> graph_levels(nx.Graph()), graph_levels(nx.Graph(levels="node rack site"))
    (('block',), ('node', 'rack', 'site'))
    """
    text = graph.graph.get("levels")
    return tuple(str(text).split()) if text else DEFAULT_LEVELS


def graph_tiers(graph):
    """The tiers of `graph`'s links, innermost first: ``intra_L0`` then ``inter_Lk``.

    Examples
    --------
    >>> import networkx as nx
    >>> graph_tiers(nx.Graph()), graph_tiers(nx.Graph(levels="node rack"))
    (('intra_block', 'inter_block'), ('intra_node', 'inter_node', 'inter_rack'))
    """
    return tiers_of_levels(graph_levels(graph))


def tiers_of_levels(levels):
    """Tier names of a topology with `levels` (innermost first)."""
    return (f"intra_{levels[0]}",) + tuple(f"inter_{level}" for level in levels)


def group_path(attrs, levels):
    """The groups a device is in, innermost level first (None where it is in none).

    `attrs` is the node's attribute mapping.
    """
    return (attrs.get("block"),) + tuple(attrs.get(level) for level in levels[1:])


def tier_between(path_u, path_v, levels):
    """The tier of a link whose ends are in the groups `path_u` and `path_v`.

    Examples
    --------
    >>> levels = ("node", "rack", "site")
    >>> tier_between(("n0", "r0", "s0"), ("n0", "r0", "s0"), levels)
    'intra_node'
    >>> tier_between(("n0", "r0", "s0"), (None, "r0", "s0"), levels)   # node switch -- rack switch
    'inter_node'
    >>> tier_between((None, "r0", "s0"), (None, None, "s0"), levels)   # rack switch -- site switch
    'inter_rack'
    >>> tier_between((None, None, "s0"), (None, None, None), levels)   # site switch -- core
    'inter_site'
    """
    if path_u[0] is not None and path_u[0] == path_v[0]:
        return f"intra_{levels[0]}"
    for k in range(1, len(levels)):
        if path_u[k] is not None and path_u[k] == path_v[k]:
            return f"inter_{levels[k - 1]}"
    return f"inter_{levels[-1]}"


def group_tier(graph, members):
    """The tier of a group of GPUs: where its collective's outermost traffic goes.

    ``intra_L0`` if every member is in one block, else ``inter_Lk`` for the outermost level
    ``Lk`` whose groups the members span (the level of the innermost group holding all of
    them is ``L(k+1)``).

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.Graph(levels="node rack")
    >>> for name, node, rack in [("a", "n0", "r0"), ("b", "n0", "r0"), ("c", "n1", "r0"),
    ...                          ("d", "n2", "r1")]:
    ...     g.add_node(name, kind="gpu", block=node, rack=rack)
    >>> group_tier(g, ["a", "b"]), group_tier(g, ["a", "c"]), group_tier(g, ["a", "d"])
    ('intra_node', 'inter_node', 'inter_rack')
    """
    levels = graph_levels(graph)
    paths = [group_path(graph.nodes[m], levels) for m in members]
    for k in range(len(levels)):
        first = paths[0][k]
        if first is not None and all(p[k] == first for p in paths):
            return f"intra_{levels[0]}" if k == 0 else f"inter_{levels[k - 1]}"
    return f"inter_{levels[-1]}"


def block_sort_key(graph, natural_key):
    """A sort key for block names that keeps the blocks of each outer group together.

    Blocks sort by their outermost group first, then inward, then by their own name, each
    in natural order; with one level this is the natural order of block names.
    """
    levels = graph_levels(graph)
    outer = {}
    if len(levels) > 1:
        for _, attrs in graph.nodes(data=True):
            if attrs.get("kind") == "gpu" and attrs.get("block") is not None:
                outer.setdefault(attrs["block"], tuple(
                    natural_key(attrs.get(level) or "") for level in reversed(levels[1:])))
    return lambda block: (outer.get(block, ()), natural_key(block))


def level_groups(graph, gpus):
    """For each level, its groups as lists of positions in `gpus` (a list in ring order).

    Returns
    -------
    dict
        Level name -> list of groups (each a list of indices into `gpus`, in order), the
        levels innermost first; a group appears in the order of its first GPU.
    """
    levels = graph_levels(graph)
    out = {}
    for k, level in enumerate(levels):
        attr = "block" if k == 0 else level
        groups = {}
        for i, gpu in enumerate(gpus):
            groups.setdefault(graph.nodes[gpu].get(attr), []).append(i)
        out[level] = list(groups.values())
    return out


def level_sizes(graph):
    """Level name -> the number of GPUs in each of its groups, or None if they differ.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.Graph(levels="node rack")
    >>> for i in range(4):
    ...     g.add_node(f"g{i}", kind="gpu", block=f"n{i // 2}", rack="r0")
    >>> level_sizes(g)
    {'node': 2, 'rack': 4}
    """
    gpus = [n for n, kind in graph.nodes(data="kind") if kind == "gpu"]
    out = {}
    for level, groups in level_groups(graph, gpus).items():
        sizes = {len(g) for g in groups}
        out[level] = sizes.pop() if len(sizes) == 1 else None
    return out


# --------------------------------------------------------------------------- checks
def check_level_names(names, fail):
    """Check level names (innermost first); `fail(index, message, fix)` raises."""
    seen = {}
    for index, name in enumerate(names):
        if not isinstance(name, str) or not _NAME.match(name):
            fail(index, f"a level name is a lower-case identifier, got {name!r}",
                 "write e.g. node, rack or site")
        reserved = RESERVED - ({"block", "node"} if index == 0 else set())
        if name in reserved:
            fail(index, f"'{name}' cannot name a level: sgdsim uses it already",
                 "choose another name, e.g. rack, pod or site")
        if name in seen:
            fail(index, f"level '{name}' is named twice", "give every level its own name")
        seen[name] = index


def check_nesting(graph, fail):
    """Check the groups of a graph with levels: names, nesting, every GPU in every level.

    `fail(node, attr, message, fix)` raises (node None: the graph itself).
    """
    text = graph.graph.get("levels")
    if text is None:
        return
    if not isinstance(text, str) or not text.split():
        fail(None, "levels", f"levels must name the levels innermost first, separated by "
                             f"spaces, got {text!r}", "store e.g. 'node rack site'")
    levels = graph_levels(graph)
    check_level_names(levels, lambda i, message, fix: fail(None, "levels", message, fix))
    parent = [{} for _ in levels]                  # level k: group -> (group of k+1, node)
    level_of = {}                                  # group name -> level index
    for node, attrs in graph.nodes(data=True):
        path = group_path(attrs, levels)
        if attrs.get("kind") == "gpu":
            for k, group in enumerate(path):
                if group is None:
                    fail(node, levels[k] if k else "block",
                         f"gpu '{node}' is in no {levels[k]}",
                         f"set {levels[k] if k else 'block'} to the {levels[k]} it is in")
        inner = next((k for k, group in enumerate(path) if group is not None), None)
        if inner is None:
            continue
        for k in range(inner, len(levels)):
            group = path[k]
            attr = levels[k] if k else "block"
            if group is None:
                fail(node, attr, f"'{node}' is in {levels[inner]} '{path[inner]}' but in no "
                                 f"{levels[k]}", f"set {attr} to the {levels[k]} that "
                                                 f"holds {levels[inner]} '{path[inner]}'")
            if level_of.setdefault(group, k) != k:
                fail(node, attr, f"group name '{group}' is used by two levels, "
                                 f"{levels[level_of[group]]} and {levels[k]}",
                     "give every group its own name")
            if k + 1 < len(levels):
                above, first = parent[k].setdefault(group, (path[k + 1], node))
                if above != path[k + 1]:
                    fail(node, levels[k + 1],
                         f"{levels[k]} '{group}' is in {levels[k + 1]} '{above}' (node "
                         f"'{first}') and in {levels[k + 1]} '{path[k + 1]}'",
                         f"put every device of {levels[k]} '{group}' in one {levels[k + 1]}")


def nest_explicit(graph, data, at, declared):
    """Apply the explicit form's ``block_level`` and ``levels`` to `graph`'s nodes.

    Sets the graph attribute ``levels`` and, on every device, the outer levels of its
    block (``block``) or of its group (``group``, for a switch or NIC above the blocks).

    Parameters
    ----------
    graph : networkx.Graph
        Nodes built from the explicit form (GPUs with ``block``).
    data : dict
        The parsed file.
    at : simulator.utils.yamlfile.Places
    declared : dict
        Device name -> its path in the file (``("switches", 2)``), for errors.
    """
    specs = data.get("levels", [])
    block_level = data.get("block_level", DEFAULT_LEVELS[0])
    names = [block_level] + [spec["name"] for spec in specs]
    check_level_names(names, lambda i, message, fix: _fail_name(at, i, message, fix))
    blocks = {attrs["block"] for _, attrs in graph.nodes(data=True) if attrs.get("block")}
    parent = [{} for _ in names]                   # level k: group -> group of level k+1
    known = {b: 0 for b in blocks}                 # group name -> level index
    for k, spec in enumerate(specs, start=1):
        where_groups = ("levels", k - 1, "groups")
        for group, members in spec["groups"].items():
            if group in known:
                raise InputError(f"group name '{group}' is used twice (a {names[known[group]]} "
                                 f"and a {names[k]})", **at(where_groups + (group,)),
                                 fix="give every group its own name")
            known[group] = k
            for j, member in enumerate(members):
                if known.get(member) != k - 1:
                    inner = [g for g, level in known.items() if level == k - 1]
                    raise InputError(f"'{member}' is not a {names[k - 1]}",
                                     **at(where_groups + (group, j)),
                                     fix=did_you_mean(member, inner)
                                     or f"list {names[k - 1]}s here: {', '.join(sorted(inner)[:4])}")
                if member in parent[k - 1]:
                    raise InputError(f"{names[k - 1]} '{member}' is in two {names[k]}s, "
                                     f"'{parent[k - 1][member]}' and '{group}'",
                                     **at(where_groups + (group, j)),
                                     fix=f"list each {names[k - 1]} in one {names[k]}")
                parent[k - 1][member] = group
        for inner in sorted(g for g, level in known.items() if level == k - 1):
            if inner not in parent[k - 1]:
                raise InputError(f"{names[k - 1]} '{inner}' is in no {names[k]}",
                                 **at(where_groups), fix=f"add '{inner}' to one of the "
                                                         f"{names[k]}s' lists")
    if tuple(names) != DEFAULT_LEVELS:
        graph.graph["levels"] = " ".join(names)
    for node, attrs in graph.nodes(data=True):
        group = attrs.pop("group", None)
        if group is not None:
            if group in blocks:
                raise InputError(f"'{group}' is a {names[0]}", **at(declared[node] + ("group",)),
                                 fix=f"write block: {group}")
            if known.get(group, 0) == 0:
                outer = [g for g, level in known.items() if level > 0]
                raise InputError(f"unknown group '{group}'", **at(declared[node] + ("group",)),
                                 fix=did_you_mean(group, outer)
                                 or ("name a group of levels" if outer else
                                     "declare levels of groups first, or write block"))
            start, name = known[group], group
        elif attrs.get("block") is not None:
            start, name = 0, attrs["block"]
        else:
            continue
        for k in range(start, len(names)):
            if k > 0:
                attrs[names[k]] = name
            if k + 1 < len(names):
                name = parent[k].get(name)
                if name is None:
                    break


def _fail_name(at, index, message, fix):
    path = ("block_level",) if index == 0 else ("levels", index - 1, "name")
    raise InputError(message, **at(path), fix=fix)


def compact_groups(data, at):
    """The compact form's outer levels: ``[(name, size)]`` and the count of outermost groups.

    ``blocks`` must be a multiple of the product of the levels' sizes.
    """
    specs = data.get("levels", [])
    block_level = data.get("block_level", DEFAULT_LEVELS[0])
    names = [block_level] + [spec["name"] for spec in specs]
    check_level_names(names, lambda i, message, fix: _fail_name(at, i, message, fix))
    per_group, sizes = 1, []
    for spec in specs:
        per_group *= spec["size"]
        sizes.append((spec["name"], spec["size"]))
    blocks = data["blocks"]
    if blocks % per_group:
        shown = " x ".join(f"{name} ({size})" for name, size in sizes)
        raise InputError(f"{blocks} blocks cannot be grouped by {shown}: {blocks} is not a "
                         f"multiple of {per_group}", **at(("blocks",)),
                         fix=f"use a multiple of {per_group} blocks, or other sizes")
    return names, sizes
