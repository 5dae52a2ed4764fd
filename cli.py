"""The ``sgdsim`` command: a thin shell over the :mod:`simulator` library.

Each command parses its options, calls one library function and prints the result. Bad
input raised by the library as :class:`simulator.errors.InputError` is printed as one
line on stderr (``error: FILE:LINE: field: what is wrong (how to fix it)``) with exit
status 2, like click's own usage errors.
"""

import json
import sys

import click

from simulator.errors import InputError


class _InputErrorExit(click.ClickException):
    """Shows an InputError as ``error: ...`` on one line and exits with status 2."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


class _Group(click.Group):
    """A click group that turns the library's InputError into exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as err:
            raise _InputErrorExit(str(err)) from err


@click.group(cls=_Group)
@click.version_option(package_name="sgdsim")
def sgdsim():
    """sgdsim: which SGD synchronisation schedule reaches the target accuracy first on
    this cluster, and what does it cost on the network?"""


# --------------------------------------------------------------------------- topology
@sgdsim.group(cls=_Group)
def topology():
    """Author, check, inspect, generate and draw cluster topologies."""


@topology.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def topology_validate(file):
    """Check a topology FILE (YAML, GraphML, GML or node-link JSON)."""
    from simulator.topology import load_topology, summarize

    graph = load_topology(file)
    click.echo(f"{file}: ok ({summarize(graph)})")


@sgdsim.command("collective")
@click.argument("topology_file", metavar="TOPOLOGY", type=click.Path(dir_okay=False))
@click.option("--algorithm", "-a", type=click.Choice(["ring", "hierarchical", "halving-doubling"]),
              default="ring", show_default=True, help="All-reduce algorithm.")
@click.option("--size", "-s", default="100MB", show_default=True,
              help="Message size per GPU, with a unit (e.g. 100MB, 1 GiB).")
@click.option("--group", "-g", default="all", show_default=True,
              help="'all' GPUs, 'block' (every block at once, each its own all-reduce), "
                   "or a comma-separated list of GPU names.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def collective(topology_file, algorithm, size, group, as_json):
    """Time one all-reduce on TOPOLOGY under the flow-level network model."""
    from simulator.collectives import simulate_allreduce
    from simulator.topology import load_topology
    from simulator.units import format_bandwidth, format_bytes, format_time, parse_bytes

    graph = load_topology(topology_file)
    nbytes = parse_bytes(size, field="--size")
    result = simulate_allreduce(graph, nbytes, algorithm=algorithm, group=group)
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
        return
    click.echo(f"{algorithm} all-reduce of {format_bytes(nbytes)} over {result['groups']} "
               f"group(s) of {result['gpus_per_group']} GPUs on {topology_file}")
    click.echo(f"  time         {format_time(result['time_s'])}")
    click.echo(f"  algbw        {format_bandwidth(result['algbw'])}")
    click.echo(f"  busbw        {format_bandwidth(result['busbw'])}")
    for tier, nb in sorted(result["bytes"].items()):
        click.echo(f"  bytes {tier:<12} {format_bytes(nb)}")


def main():
    """Console entry point."""
    sgdsim(prog_name="sgdsim")


if __name__ == "__main__":
    sys.exit(main())
