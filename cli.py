"""The ``sgdsim`` command: a thin shell over the :mod:`simulator` library.

Each command parses its options, calls one library function and prints the result. Bad
input raised by the library as :class:`simulator.utils.errors.InputError` is printed as one
line on stderr (``error: FILE:LINE: field: what is wrong (how to fix it)``) with exit
status 2, like click's own usage errors; Ctrl-C is one line and status 130. Every output
location is checked before the work starts, and ``-`` as an output means standard output
(the report then goes to stderr). Text from users' files is printed with its control
characters escaped.
"""

import contextlib
import json
import logging
import math
import re
import sys

import click

import simulator
from simulator.utils.errors import InputError, printable
from simulator.utils.units import MAX_NUMBER, NUMBER_PATTERN

_NO_ARGS = tuple(e for e in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if e)


def echo(text="", *, err=False, nl=True):
    """``click.echo`` with control characters escaped: names come from users' files, and
    an escape sequence in a label must not reach the terminal."""
    click.echo(printable(text), err=err, nl=nl)


class _OneLine(click.ClickException):
    """``error: ...`` on one line of stderr, and an exit status (2: bad input)."""

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None):
        click.echo(f"error: {printable(self.message, newlines=False)}", err=True)


class _Group(click.Group):
    """A click group that turns the library's InputError into exit status 2 and Ctrl-C
    into status 130, each as one line, and prints every usage error (bad option, bad
    choice) as one line too. Without a command it prints its help (stdout, status 0)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as err:
            raise _OneLine(str(err)) from err
        except KeyboardInterrupt as err:
            raise _OneLine("interrupted", 130) from err

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS as err:
            click.echo(err.ctx.get_help())
            sys.exit(0)
        except click.UsageError as err:
            hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
            click.echo(f"error: {printable(err.format_message(), newlines=False)}{hint}",
                       err=True)
            sys.exit(2)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


class _Number(click.ParamType):
    """A number on the command line as the files write it: ASCII digits (``٣`` and ``1_000``
    are not numbers here, as they are not in YAML or the schemas), finite, in a range."""

    def __init__(self, integer=False, minimum=None, maximum=None, min_open=False):
        self.integer, self.minimum, self.maximum, self.min_open = \
            integer, minimum, maximum, min_open
        self.name = "integer" if integer else "number"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            if not re.fullmatch(r"[-+]?[0-9]+" if self.integer else NUMBER_PATTERN, text):
                what = "a whole number" if self.integer else "a number"
                self.fail(f"{value!r} is not {what} (write it in the digits 0-9)", param, ctx)
            number = int(text) if self.integer else float(text)
        if not (math.isfinite(number) and abs(number) <= MAX_NUMBER):
            self.fail(f"{value!r} is too large (numbers are at most 1e15)", param, ctx)
        low, high = self.minimum, self.maximum
        if low is not None and (number < low or (self.min_open and number == low)):
            self.fail(f"{value!r} must be {'>' if self.min_open else '>='} {low}", param, ctx)
        if high is not None and number > high:
            self.fail(f"{value!r} must be <= {high}", param, ctx)
        return number


def _count(minimum=1):
    return _Number(integer=True, minimum=minimum)


SEED = _Number(integer=True, minimum=0, maximum=2**32 - 1)


@contextlib.contextmanager
def _notes(quiet):
    """Let the library's notes (warnings on the ``simulator`` logger) through, or not."""
    logger = logging.getLogger("simulator")
    level = logger.level
    if quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@click.group(cls=_Group)
@click.version_option(simulator.__version__, prog_name="sgdsim")
def sgdsim():
    """sgdsim: which SGD synchronisation schedule reaches the target accuracy first on
    this cluster, and what does it cost on the network?"""


# --------------------------------------------------------------------------- topology
@sgdsim.group(cls=_Group)
def topology():
    """Author, check, inspect, generate and draw cluster topologies."""


def _list_shipped(kind):
    """The shipped files of `kind` as a table: name, what it is, its description."""
    from simulator.utils.shipped import catalog, shipped_dir

    entries = catalog(kind)
    width = max(len(name) for name in entries) + 2
    typed = kind == "scenarios"
    for name, (what, description) in entries.items():
        echo(f"{name:<{width}}" + (f"{what:<10}" if typed else "") + description)
    echo(f"({len(entries)} in {shipped_dir(kind)}; name one wherever a file goes, "
               "or copy it out to edit)", err=True)


def _copy_shipped(kind, name, dest, force):
    from simulator.utils.shipped import copy_shipped

    for path in copy_shipped(kind, name, dest, overwrite=force):
        echo(f"{path}: copied {name}")


@topology.command("list")
def topology_list():
    """List the shipped topologies, with a line on each."""
    _list_shipped("topologies")


@topology.command("copy")
@click.argument("name")
@click.argument("dest", required=False, type=click.Path())
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
def topology_copy(name, dest, force):
    """Copy the shipped topology NAME to DEST (a file or a directory [.]; - prints it) to
    edit it."""
    _copy_shipped("topologies", name, dest, force)


@topology.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def topology_validate(file):
    """Check a topology FILE (YAML, GraphML, GML or node-link JSON) or shipped NAME."""
    from simulator.cluster.topology import load_topology, summarize

    graph = load_topology(file)
    echo(f"{file}: ok ({summarize(graph)})")


@topology.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (bytes/s, s).")
def topology_show(file, as_json):
    """Print counts, link tiers, injection and bisection bandwidth of topology FILE (or a
    shipped name)."""
    from simulator.cluster.topology import load_topology
    from simulator.outputs.summary import format_summary, topology_summary

    summary = topology_summary(load_topology(file))
    echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


def _family_names():
    from simulator.cluster.generators import FAMILIES

    return list(FAMILIES)


class _LazyChoice(click.Choice):
    """A Choice whose choices are read when first needed (to parse, or for help), so that
    defining the command does not import what lists them (here networkx, 80 ms)."""

    def __init__(self, load, case_sensitive=True):
        self._load, self._choices, self.case_sensitive = load, None, case_sensitive

    @property
    def choices(self):
        if self._choices is None:
            self._choices = tuple(self._load())
        return self._choices


# Generator parameter -> command-line option, where the two are not spelled alike.
_GENERATE_FLAGS = {"peak_flops": "--gpu-flops"}


def _generate_flag(name):
    return _GENERATE_FLAGS.get(name, "--" + name.replace("_", "-"))


@topology.command("generate")
@click.argument("family", type=_LazyChoice(_family_names))
@click.option("--blocks", type=_count(0), help="two-tier, ring: blocks; two-sites: blocks per site.")
@click.option("--gpus-per-block", type=_count(0), help="two-tier, two-sites: GPUs per block.")
@click.option("--k", type=_count(0), help="fat-tree: switch radix (even).")
@click.option("--n", type=_count(0), help="ring: number of GPUs.")
@click.option("--rows", type=_count(0), help="torus: rows.")
@click.option("--cols", type=_count(0), help="torus: columns.")
@click.option("--nodes", type=_count(0), help="dgx: number of nodes.")
@click.option("--gpus-per-node", type=_count(0), help="dgx: GPUs per node [8].")
@click.option("--nics-per-node", type=_count(0), help="dgx: NICs per node [8].")
@click.option("--intra-bandwidth", help="Links inside a block, e.g. '25 GB/s'.")
@click.option("--intra-latency", help="Links inside a block, e.g. '1 us'.")
@click.option("--inter-bandwidth", help="Links between blocks / up the tree, e.g. '100 Gbit/s'.")
@click.option("--inter-latency", help="Links between blocks / up the tree, e.g. '5 us'.")
@click.option("--nic-bandwidth", help="dgx: GPU-NIC (PCIe) links, e.g. '32 GB/s'.")
@click.option("--nic-latency", help="dgx: GPU-NIC (PCIe) links, e.g. '1 us'.")
@click.option("--wan-bandwidth", help="two-sites: the WAN link, e.g. '10 Gbit/s'.")
@click.option("--wan-latency", help="two-sites: the WAN link, e.g. '5 ms'.")
@click.option("--gpu-flops", help="Peak compute rate of every GPU, e.g. '15.7 TFLOP/s'.")
@click.option("--efficiency", type=_Number(), help="Achieved fraction of peak, e.g. 0.4.")
@click.option("--gpu-type", help="GPU name stored in the file, e.g. V100.")
@click.option("--switch-reduction", is_flag=True, default=None,
              help="dgx: the NVSwitches reduce in the switch (NVLink SHARP).")
@click.option("--output", "-o", type=click.Path(),
              help="Topology file to write: .yaml, .graphml, .gml or .json (node-link); "
                   "without it, or with -, YAML goes to stdout.")
def topology_generate(family, output, **options):
    """Generate a topology of FAMILY and write it as YAML.

    Give the counts the family needs (e.g. two-tier: --blocks, --gpus-per-block); other
    options default to the generator's values (simulator/cluster/generators.py). An option the
    family does not take is an error.
    """
    from simulator.cluster.generators import family_parameters, generate
    from simulator.cluster.topology import summarize
    from simulator.cluster.writer import write_topology
    from simulator.utils.files import check_output, is_stdout

    if output is not None:
        check_output(output, field="--output", what="a topology",
                     suffixes=(".yaml", ".yml", ".graphml", ".gml", ".json"))
    params = {("peak_flops" if k == "gpu_flops" else k): v for k, v in options.items() if v is not None}
    try:
        graph = generate(family, **params)
    except InputError as err:      # name the command-line flags, not the library's parameters
        flags = " ".join(_generate_flag(p) for p in family_parameters(family))
        fix = f"its options: {flags}" if "does not apply" in err.message else err.fix
        if "needs it" in err.message:
            fix = f"add {_generate_flag(err.field)} N"
        raise InputError(err.message, field=_generate_flag(err.field), fix=fix) from err
    # On stdout, the schema comment reaches the schema from the current directory.
    write_topology(graph, "-" if output is None else output)
    if output is not None and not is_stdout(output):
        echo(f"{output}: wrote {summarize(graph)}")


@topology.command("draw")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.Path(), required=True,
              help="Figure to write: .png, .svg or .pdf; - writes a PNG to stdout.")
@click.option("--layout", type=click.Choice(["layered", "circular", "spring"]), default=None,
              help="Node placement [layered for switched networks, else circular/spring].")
def topology_draw(file, output, layout):
    """Draw topology FILE: GPUs coloured by block, line width by bandwidth."""
    from simulator.cluster.draw import FORMATS, draw_topology
    from simulator.cluster.topology import load_topology
    from simulator.utils.files import check_output, is_stdout

    check_output(output, field="--output", suffixes=FORMATS, what="a drawing")
    drawn = draw_topology(load_topology(file), output, layout=layout)
    echo(f"{drawn['path']}: drew {file}", err=is_stdout(output))


def _size_range(text):
    """``MIN:MAX[:FACTOR]`` -> sizes MIN, MIN*FACTOR, ... up to MAX (factor 2 by default)."""
    from simulator.utils.units import parse_bytes

    parts = text.split(":")
    fix = "write e.g. --sweep 8B:1GiB or --sweep 1MiB:1GiB:4"
    if len(parts) not in (2, 3):
        raise InputError(f"{text!r} is not MIN:MAX or MIN:MAX:FACTOR", field="--sweep", fix=fix)
    low, high = (parse_bytes(p, field="--sweep") for p in parts[:2])
    try:
        factor = float(parts[2]) if len(parts) == 3 else 2.0
    except ValueError:
        raise InputError(f"factor {parts[2]!r} is not a number", field="--sweep", fix=fix) from None
    if not (0 < low <= high) or not factor > 1:
        raise InputError(f"{text!r} needs 0 < MIN <= MAX and FACTOR > 1", field="--sweep", fix=fix)
    count = math.floor(math.log(high / low) / math.log(factor) + 1e-9) + 1
    if count > _MAX_SWEEP_SIZES:
        raise InputError(f"{text!r} makes {count:,} sizes, more than {_MAX_SWEEP_SIZES:,}",
                         field="--sweep", fix="use a larger FACTOR or a narrower range")
    sizes = [low]
    while sizes[-1] * factor <= high * (1 + 1e-12):
        sizes.append(sizes[-1] * factor)
    return sizes


# simulator.network.collectives.ALGORITHM_CHOICES and PROTOCOL_CHOICES, written out so that
# `sgdsim --help` does not import the network model (tests/test_cli_collective.py checks).
_ALGORITHMS = ["ring", "tree", "in-switch", "hierarchical", "halving-doubling", "auto"]
_PROTOCOLS = ["LL", "LL128", "Simple", "ideal", "auto"]
_MAX_CHANNELS = 64              # simulator.network.channels.MAX_CHANNELS
_MAX_SWEEP_SIZES = 1000


@sgdsim.command("collective")
@click.argument("topology_file", metavar="TOPOLOGY", type=click.Path(dir_okay=False))
@click.option("--algorithm", "-a", type=click.Choice(_ALGORITHMS), default="auto",
              show_default=True, help="All-reduce algorithm; auto: the cheapest per size.")
@click.option("--protocol", "-p", type=click.Choice(_PROTOCOLS), default="auto",
              show_default=True, help="NCCL protocol; ideal: the wires alone, no protocol cost.")
@click.option("--channels", "-c", type=click.IntRange(min=1, max=_MAX_CHANNELS),
              help="Channels of ring and tree [the topology's: NICs per block, ...].")
@click.option("--size", "-s", default="100MB", show_default=True,
              help="Message size per GPU, with a unit (e.g. 100MB, 1 GiB).")
@click.option("--sweep", metavar="MIN:MAX[:FACTOR]",
              help="Every size from MIN to MAX, times FACTOR [2] each: a table (like nccl-tests).")
@click.option("--group", "-g", default="all", show_default=True,
              help="'all' GPUs, 'block' (every block at once, each its own all-reduce), "
                   "or a comma-separated list of GPU names.")
@click.option("--links", type=click.IntRange(min=1), is_flag=False, flag_value=10,
              help="Also list the N busiest links [10]: busy time, bytes, utilization.")
@click.option("--nccl-tests", "nccl_tests", is_flag=True,
              help="With --sweep: print the table in nccl-tests' all_reduce_perf layout.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (a list with --sweep): time_s, algbw_Bps, busbw_Bps, "
                   "bytes per tier, what ran.")
def collective(topology_file, algorithm, protocol, channels, size, sweep, group, links,
               nccl_tests, as_json):
    """Time one all-reduce on TOPOLOGY under the network and protocol model (NCCL's
    algorithms, protocols and channels; docs/network.md)."""
    from simulator.cluster.topology import gpu_blocks, load_topology
    from simulator.network.collectives import simulate_allreduce
    from simulator.network.nccltests import format_nccl_tests
    from simulator.outputs.summary import collective_summary
    from simulator.utils.units import (
        format_bandwidth,
        format_bytes,
        format_time,
        parse_bytes,
    )

    def bandwidth(value):                # undefined for an all-reduce that takes no time
        return "-" if value is None else format_bandwidth(value)

    graph = load_topology(topology_file)
    if nccl_tests and not sweep:
        raise InputError("--nccl-tests prints a table of sizes", field="--nccl-tests",
                         fix="add --sweep MIN:MAX, e.g. --sweep 8B:1GiB")
    if sweep:
        sizes = _size_range(sweep)
        results = [collective_summary(simulate_allreduce(graph, n, algorithm, group,
                                                         protocol=protocol, channels=channels))
                   for n in sizes]
        if as_json:
            echo(json.dumps(results, indent=2, sort_keys=True, allow_nan=False))
        elif nccl_tests:
            p = results[0]["gpus_per_group"]
            blocks = [b for b, gpus in gpu_blocks(graph).items()]
            hosts = blocks if p == len([g for m in gpu_blocks(graph).values() for g in m]) \
                else ["host0"]
            echo(format_nccl_tests([(r["size_bytes"], r["time_s"], r["time_s"])
                                    for r in results], ranks=p, hosts=hosts,
                                   gpu_name=f"sgdsim {graph.graph.get('name') or 'model'}"),
                 nl=False)
        else:
            echo(f"all-reduce over {results[0]['groups']} group(s) of "
                 f"{results[0]['gpus_per_group']} GPUs on {topology_file}: algorithm "
                 f"{algorithm}, protocol {protocol}")
            echo(f"{'size':>10}  {'algorithm':<16} {'protocol':<8} {'ch':>3}  "
                 f"{'time':>9}  {'algbw':>11}  {'busbw':>11}")
            for r in results:
                echo(f"{format_bytes(r['size_bytes']):>10}  {r['algorithm']:<16} "
                     f"{r['protocol']:<8} {r['channels'] or '-':>3}  "
                     f"{format_time(r['time_s']):>9}  {bandwidth(r['algbw_Bps']):>11}  "
                     f"{bandwidth(r['busbw_Bps']):>11}")
        return
    nbytes = parse_bytes(size, field="--size")
    if nbytes < 0:
        raise InputError(f"must not be negative, got {size!r}", field="--size",
                         fix="give a size such as '100 MB'")
    result = collective_summary(simulate_allreduce(graph, nbytes, algorithm=algorithm,
                                                   group=group, protocol=protocol,
                                                   channels=channels, links=links or 0))
    if as_json:
        echo(json.dumps(result, indent=2, sort_keys=True, allow_nan=False))
        return
    echo(f"all-reduce of {format_bytes(nbytes)} over {result['groups']} "
         f"group(s) of {result['gpus_per_group']} GPUs on {topology_file}")
    ran = f"{result['algorithm']}, {result['protocol']}"
    if result["channels"]:
        ran += f", {result['channels']} channel" + ("s" if result["channels"] > 1 else "")
    asked = [k for k in ("algorithm", "protocol") if result["requested"][k] == "auto"]
    if asked:
        ran += f"  ({' and '.join(asked)} auto: cheapest of {len(result['candidates'])})"
    echo(f"  ran          {ran}")
    echo(f"  time         {format_time(result['time_s'])}")
    if result["latency_s"] is not None:
        echo(f"  latency      {format_time(result['latency_s'])}  "
             "(base and critical path; the rest moves bytes)")
    echo(f"  algbw        {bandwidth(result['algbw_Bps'])}")
    echo(f"  busbw        {bandwidth(result['busbw_Bps'])}")
    for tier, nb in result["bytes"].items():             # innermost tier first
        echo(f"  bytes {tier:<12} {format_bytes(nb)}")
    if links:
        echo(f"busiest links ({len(result['links'])}, longest busy first)")
        echo(f"  {'link':<28} {'tier':<12} {'bytes':>10}  {'busy':>9}  {'utilization':>11}")
        for row in result["links"]:
            use = "-" if row["utilization"] is None else f"{100 * row['utilization']:.0f} %"
            echo(f"  {row['link']:<28} {row['tier']:<12} {format_bytes(row['bytes']):>10}  "
                 f"{format_time(row['busy_s']):>9}  {use:>11}")


@sgdsim.command("calibrate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--topology", "topology_file", required=True, type=click.Path(dir_okay=False),
              help="The topology to calibrate (a file or a shipped name).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The calibrated topology to write (.yaml, .graphml, .gml or .json).")
@click.option("--holdout", metavar="SIZES",
              help="Sizes to leave out of the fit and predict, e.g. 64MiB,1GiB [k-fold by size].")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="k of the k-fold cross-validation by size (without --holdout).")
@click.option("--placement", type=click.Choice(["both", "out-of-place", "in-place"]),
              default="both", show_default=True, help="Which nccl-tests columns to fit.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False),
              help="Also draw measured vs predicted busbw over size (.png, .svg, .pdf).")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def calibrate_command(files, topology_file, output, holdout, folds, placement, plot_file,
                      as_json):
    """Fit TOPOLOGY's collective costs (protocol latencies, efficiencies, thresholds) to
    nccl-tests all_reduce_perf outputs FILES (e.g. one per node count), write the calibrated
    topology, and print the fit error and the held-out error per size (docs/calibrate.md)."""
    from simulator.cluster.topology import load_topology
    from simulator.cluster.writer import check_topology_path, write_topology
    from simulator.experiments.calibrate import calibrate
    from simulator.outputs.calibration import (
        calibration_series,
        check_figure_path,
        draw_calibration,
        format_calibration,
    )
    from simulator.utils.units import parse_bytes

    graph = load_topology(topology_file)
    check_topology_path(output)
    if plot_file:
        check_figure_path(plot_file)
    sizes = None
    if holdout:
        sizes = [parse_bytes(part.strip(), field="--holdout") for part in holdout.split(",")]
    result = calibrate(graph, list(files), holdout=sizes, folds=folds,
                       placement=placement.replace("-", "_"))
    write_topology(result.graph, output)
    if plot_file:
        draw_calibration(calibration_series(result), plot_file)
    if as_json:
        click.echo(json.dumps({"method": result.method, "rows": result.rows,
                               "summary": result.summary, "collectives": result.params},
                              indent=2, sort_keys=True))
    else:
        click.echo(format_calibration(result))
    click.echo(f"{output}: wrote the calibrated topology" +
               (f"; {plot_file}: drew measured vs predicted" if plot_file else ""), err=True)


# --------------------------------------------------------------------------- scenario
@sgdsim.group(cls=_Group)
def scenario():
    """List the shipped scenarios, sweeps and suites, and copy them out to edit."""


@scenario.command("list")
def scenario_list():
    """List the shipped scenarios, sweeps and regression suites, with a line on each."""
    _list_shipped("scenarios")


@scenario.command("copy")
@click.argument("name")
@click.argument("dest", required=False, type=click.Path())
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
def scenario_copy(name, dest, force):
    """Copy the shipped scenario NAME to DEST (a file or a directory [.]; - prints it) to
    edit it; a suite comes with its baseline."""
    _copy_shipped("scenarios", name, dest, force)


@sgdsim.command("schema")
@click.argument("name", type=click.Choice(["topology", "scenario", "regress"]))
@click.option("--output", "-o", type=click.Path(),
              help="Write the schema here instead of printing it (- prints it).")
def schema(name, output):
    """Print (or write) the JSON Schema of topology, scenario or regress-suite files, for
    editors: '# yaml-language-server: $schema=PATH' atop a YAML file. The schema is whole
    (the topology schema inside the scenario schema...), so it works from any folder."""
    from simulator.utils.files import check_output, is_stdout, write_text_atomic
    from simulator.utils.yamlfile import schema_text

    if output is not None:
        check_output(output, field="--output", what="a schema")
    write_text_atomic("-" if output is None else output, schema_text(name), field="--output")
    if output is not None and not is_stdout(output):
        echo(f"{output}: wrote the {name} schema", err=True)


# --------------------------------------------------------------------------- run
ALGORITHM_NAMES = ["minibatch", "local", "postlocal", "hierarchical", "diloco", "slowmo", "qsr",
                   "adacomm", "gossip"]


@sgdsim.command("run")
@click.argument("scenario", required=False, type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.Path(),
              help="Write the results JSON here (- prints it; the table then goes to stderr).")
@click.option("--algorithm", type=click.Choice(ALGORITHM_NAMES),
              help="Run only this variant (replaces the scenario's list).")
@click.option("-H", "H", type=_count(1),
              help="Local steps between averages (gossip: between global averages).")
@click.option("--Hb", "Hb", type=_count(1), help="Block averages per global average.")
@click.option("--switch-epoch", type=_Number(minimum=0),
              help="Post-local SGD: switch after this epoch.")
@click.option("--switch-step", type=_count(0), help="Post-local SGD: switch after this step.")
@click.option("--topology", "topology_file", type=click.Path(dir_okay=False),
              help="Topology file (or shipped name) replacing the scenario's.")
@click.option("--epochs", type=_Number(minimum=0, min_open=True), help="Training length in epochs.")
@click.option("--steps", type=_count(1), help="Training length in steps.")
@click.option("--target-accuracy", type=_Number(minimum=0, maximum=1, min_open=True),
              help="Test accuracy whose first crossing is the time-to-accuracy.")
@click.option("--seed", type=SEED, help="Seed of data order, initialisation and jitter "
                                        "(0 to 4294967295).")
@click.option("--cost-profile", help="Time compute and messages as this model (e.g. resnet20-cifar10).")
@click.option("--global-sync-delay", help="Extra time per global sync, with a unit (e.g. '1 s').")
@click.option("--convention", type=click.Choice(["paper", "pytorch"]),
              help="Count schedule steps as the paper states them or as torch.distributed "
                   "runs them (every variant).")
@click.option("--evaluate", type=click.Choice(["common", "any_gpu"]),
              help="Which models count for time-to-accuracy: the model all GPUs hold after "
                   "a global sync [common], or also each GPU's own (any_gpu).")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="A variant setting with no option of its own, e.g. alpha=0.2, "
                   "outer_lr=0.5, replica=block, graph=torus (repeatable; with --algorithm "
                   "that variant's, otherwise every variant's it applies to; "
                   "docs/schedules.md).")
@click.option("--overlap", type=click.Choice(["none", "ddp"]),
              help="ddp: all-reduce gradients in buckets during the backward pass, as "
                   "PyTorch's DistributedDataParallel (every variant); none: after it.")
@click.option("--bucket-cap", help="With --overlap ddp: DDP's bucket size limit, with a unit "
                                   "[25 MiB, PyTorch's bucket_cap_mb].")
@click.option("--quiet", "-q", is_flag=True,
              help="Print only the table (and errors and warnings): no progress bar, no "
                   "header naming the scenario and cluster, no notes, no 'written to' lines.")
@click.option("--trace", "trace_file", type=click.Path(),
              help="Write a Chrome trace (JSON) of every GPU's compute, waits and syncs and the "
                   "bytes in flight per tier; open it in Perfetto or chrome://tracing.")
def run(scenario, output, quiet, topology_file, global_sync_delay, settings, bucket_cap,
        trace_file=None, **overrides):
    """Replay SCENARIO's SGD variants on its cluster and compare them. SCENARIO is a file
    or the name of a shipped scenario ('sgdsim scenario list').

    With no SCENARIO, runs the built-in default: the seed paper's 8 nodes x 2 GPUs
    cluster, an MLP on scikit-learn's digits, and all four variants.
    """
    from simulator.experiments.runner import load_workload, planned_steps, run_variant
    from simulator.experiments.scenario import load_scenario, parse_settings
    from simulator.outputs.report import format_table, results_document, write_results
    from simulator.utils.files import check_output, is_stdout
    from simulator.utils.units import parse_bytes, parse_time

    if is_stdout(output) and is_stdout(trace_file):
        raise InputError("--output and --trace cannot both be '-' (standard output)",
                         field="--trace", fix="write one of them to a file")
    for path, option, what in ((output, "--output", "results"), (trace_file, "--trace", "a trace")):
        if path is not None:
            check_output(path, field=option, what=what)       # before the runs, not after
    report = is_stdout(output) or is_stdout(trace_file)       # the table goes to stderr
    overrides["topology"] = topology_file
    overrides["settings"] = parse_settings(settings) if settings else None
    overrides["global_sync_delay_s"] = (None if global_sync_delay is None else
                                        parse_time(global_sync_delay, field="--global-sync-delay"))
    overrides["bucket_cap_bytes"] = (None if bucket_cap is None else
                                     parse_bytes(bucket_cap, field="--bucket-cap"))
    with _notes(quiet):
        spec = load_scenario(scenario, overrides)
    workload = load_workload(spec)
    total = sum(planned_steps(spec, v, len(workload[0].y_train)) for v in spec.variants)
    records = []
    timed = [] if trace_file else None           # what the engine timed, for --trace
    with _progress(total, quiet) as bar:
        for variant in spec.variants:
            bar.set_description(printable(variant.label, newlines=False))
            records.append(run_variant(spec, variant, workload=workload, progress=bar.update,
                                       timed=timed,
                                       warn=lambda line: bar.write(printable(line),
                                                                   file=sys.stderr)))
    if not quiet:
        cluster = spec.topology.graph.get("name") or spec.topology_source
        echo(f"{spec.name}: {records[0]['workers']} GPUs on {cluster} ({spec.topology_source}), "
             f"{spec.workload.model} on {spec.workload.dataset}, "
             f"timed as {records[0]['timing']['cost_profile']}", err=report)
    echo(format_table(records, target_accuracy=spec.target_accuracy), err=report)
    if output:
        write_results(output, results_document(spec, records))
        if not quiet and not is_stdout(output):
            echo(f"results written to {output}", err=True)
    if trace_file:
        from simulator.outputs.trace import trace_document, write_trace

        write_trace(trace_file, trace_document([(r["label"], t) for r, t in zip(records, timed)]))
        if not quiet and not is_stdout(trace_file):
            echo(f"trace written to {trace_file} (open in https://ui.perfetto.dev)", err=True)


def _progress(total, quiet):
    """A tqdm bar on stderr over training steps (off with --quiet or when not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, unit="step", disable=True if quiet else None, leave=False,
                file=sys.stderr)


# --------------------------------------------------------------------------- plot
@sgdsim.command("plot")
@click.argument("results", type=click.Path())
@click.option("--kind", "-k", required=True,
              type=click.Choice(["speedup", "accuracy", "comm", "heatmap", "tradeoff", "workers",
                                 "resilience", "tune", "pareto"]),
              help="speedup: time-to-accuracy speedup vs GPUs; accuracy: test accuracy vs "
                   "simulated time; comm: compute/comm/wait time and bytes per tier per run; "
                   "heatmap: time-to-accuracy over two swept values; tradeoff: each run's "
                   "time-to-accuracy against its bytes on the slowest tier; workers: working "
                   "GPUs over time under faults; resilience: time-to-accuracy and goodput "
                   "against a swept fault setting; tune: a search's objective over trials; "
                   "pareto: its trials' time-to-accuracy against final accuracy and "
                   "inter-block bytes.")
@click.option("--output", "-o", type=click.Path(), required=True,
              help="Figure to write: .png, .svg or .pdf; - writes a PNG to stdout.")
@click.option("--x", "x_path", help="heatmap, resilience: the swept point path on the x axis "
                                    "[first swept; resilience: the first under faults.].")
@click.option("--y", "y_path", help="heatmap: the swept point path on the y axis [second swept].")
def plot(results, kind, output, x_path, y_path):
    """Draw a figure of RESULTS: a results JSON of 'sgdsim run -o', a sweep directory or
    its runs.jsonl, or (tune, pareto) a 'sgdsim tune' directory (docs/gallery.md shows
    each kind)."""
    from simulator.outputs.plots import plot_file
    from simulator.utils.files import is_stdout

    series = plot_file(results, kind, output, x=x_path, y=y_path)
    failed = f" ({len(series['failed'])} run(s) failed)" if series["failed"] else ""
    echo(f"{series['path']}: drew {kind} of {results}{failed}", err=is_stdout(output))


# --------------------------------------------------------------------------- regress
@sgdsim.command("regress")
@click.argument("suite", required=False, type=click.Path(dir_okay=False))
@click.option("--baseline", type=click.Path(dir_okay=False),
              help="Baseline JSON in place of the suite's (relative to the current directory).")
@click.option("--update", is_flag=True, help="Run the suite and rewrite the baseline.")
@click.option("--junit", type=click.Path(),
              help="Write JUnit XML here: a testsuite per scenario, a testcase per run (- "
                   "prints it; the report then goes to stderr).")
@click.option("--markdown", type=click.Path(),
              help="Write a Markdown summary here: the verdict and the regressions (- prints "
                   "it, e.g. '>> $GITHUB_STEP_SUMMARY'; the report then goes to stderr).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@click.pass_context
def regress(ctx, suite, baseline, update, junit, markdown, quiet):
    """Run a regression SUITE [scenarios/regress.yaml] and compare every metric of every
    run with the baseline. Exit status: 0 within tolerance, 1 anything moved or the suite
    changed, 2 bad input or no baseline (see docs/regress.md)."""
    from simulator.experiments.regress_report import check_suite
    from simulator.utils.files import is_stdout

    if update and (junit or markdown):
        raise click.UsageError("--junit and --markdown report a check; they do not apply "
                               "with --update")
    if is_stdout(junit) and is_stdout(markdown):
        raise InputError("--junit and --markdown cannot both be '-' (standard output)",
                         field="--markdown", fix="write one of them to a file")
    report = is_stdout(junit) or is_stdout(markdown)
    ctx.exit(check_suite(suite, baseline=baseline, update=update, junit=junit,
                         markdown=markdown, echo=lambda line: echo(line, err=report),
                         note=None if quiet else lambda line: echo(line, err=True)))


# --------------------------------------------------------------------------- sweep
@sgdsim.command("sweep")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(),
              help="Directory for sweep.json, runs.jsonl and summary.csv (new or empty).")
@click.option("--jobs", "-j", type=_count(1),
              help="Local worker processes [CPUs]; 1 runs in this process. With --scheduler: "
                   "runs submitted at once [all].")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on a Dask cluster, e.g. tcp://host:8786 (see docs/sweeps.md).")
@click.option("--resume", is_flag=True,
              help="Continue the sweep in OUTPUT: skip the runs already in runs.jsonl.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no notes.")
def sweep_command(scenario, output, jobs, scheduler, resume, quiet):
    """Run every point of SCENARIO's sweep section, each variant a run (docs/sweeps.md)."""
    import os
    import time

    from tqdm import tqdm

    from simulator.experiments.sweep import load_sweep
    from simulator.experiments.sweep_runner import (
        SweepDir,
        dask_executor,
        format_sweep_table,
        local_executor,
        run_sweep,
    )

    SweepDir.check(output, resume=resume)             # before checking every point
    plan = load_sweep(scenario)
    note = (lambda text: None) if quiet else (lambda text: echo(text, err=True))
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if scheduler:
            executor, threads = stack.enter_context(dask_executor(scheduler))
            where, window = f"Dask at {scheduler} ({threads} worker threads)", jobs
        directory = SweepDir.open(output, plan, resume=resume)
        stack.callback(directory.close)
        pending = directory.pending()
        if directory.stale:
            note(f"note: {output}/runs.jsonl holds {len(directory.stale)} run(s) that are not "
                 "in this sweep (the scenario changed?); summary.csv leaves them out")
        if not scheduler:
            jobs = min(jobs or os.cpu_count() or 1, max(1, len(pending)))
            executor = stack.enter_context(local_executor(jobs))
            where = "this process" if jobs == 1 else f"{jobs} local processes"
            window = 1 if jobs == 1 else 4 * jobs
        note(f"{plan.name}: {len(plan.points)} points, {len(plan.runs)} runs "
             f"({len(plan.runs) - len(pending)} already done), on {where}")
        bar = stack.enter_context(tqdm(total=len(pending), unit="run", leave=False,
                                       disable=True if quiet else None, file=sys.stderr))
        failed = 0

        def advance(entry):
            nonlocal failed
            failed += entry["status"] == "failed"
            bar.set_postfix(failed=failed, refresh=False)
            bar.update()

        outcome = run_sweep(directory, executor, window=window, on_result=advance)
        directory.finish()                 # runs.jsonl and summary.csv in plan order
    entries = list(directory.finished.values())
    echo(format_sweep_table(plan, entries))
    for entry in sorted(entries, key=lambda e: e["point"]):
        if entry["status"] == "failed":
            echo(f"failed: {entry['id']} point {entry['point']} {entry['variant']}: "
                 f"{entry['error']}")
    done = len(directory.finished)
    seconds = time.monotonic() - started
    echo(f"{done} of {len(plan.runs)} runs in {output}: sweep.json, runs.jsonl, "
         f"summary.csv ({outcome.ran} of them run now, in {seconds:.1f} s)")
    rest = f"run the same command with --resume to run the other {len(plan.runs) - done}"
    if outcome.interrupted:
        raise _OneLine(f"interrupted: {done} of {len(plan.runs)} runs finished and are "
                       f"kept in {output}/runs.jsonl; {rest}", 130)
    if outcome.lost:
        raise _OneLine(f"a worker stopped ({outcome.lost_error}): {done} of "
                       f"{len(plan.runs)} runs finished and are kept in "
                       f"{output}/runs.jsonl; {rest}", 1)


# --------------------------------------------------------------------------- tune
@sgdsim.command("tune")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--space", "spaces", multiple=True, required=True, metavar="NAME=RANGE",
              help="A setting to search: H=1..64:log (integers, log-uniform), lr=0.01..0.1 "
                   "(floats), collective=ring,hierarchical (choices); a bare name is a "
                   "setting of the tuned variant, a dotted path any scenario key. Repeat.")
@click.option("--objective", default="time_to_accuracy_s", show_default=True,
              help="Record metric to optimise.")
@click.option("--direction", type=click.Choice(["minimize", "maximize"]),
              help="[maximize for final_test_accuracy, else minimize]")
@click.option("--constraint", "constraints", multiple=True, metavar="EXPR",
              help="e.g. 'final_test_accuracy>=BASELINE-0.005' or "
                   "'comm_bytes.inter_block<=1e9'. Repeat.")
@click.option("--variant", help="Label of the variant to tune [the one the space fits].")
@click.option("--baseline", help="Variant (label or algorithm) that BASELINE names [minibatch].")
@click.option("--budget", type=click.IntRange(min=1), default=30, show_default=True,
              help="Trials (a finite space no larger than this is searched exhaustively).")
@click.option("--rungs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Looks at each trial (prefixes of 1/3^k of its steps): a trial already no "
                   "better than the best full run is pruned; 1: no pruning.")
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True,
              help="Trials asked at once (it, not --jobs, decides the trials).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampler.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Directory for plan.json, trials.jsonl and tune.json (new or empty).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Local worker processes [CPUs].")
@click.option("--scheduler", metavar="ADDRESS", help="Run on a Dask cluster (docs/sweeps.md).")
@click.option("--resume", is_flag=True, help="Continue the search in OUTPUT.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def tune(scenario, spaces, objective, direction, constraints, variant, baseline, budget, rungs,
         batch, seed, output, jobs, scheduler, resume, quiet):
    """Search SCENARIO's schedule settings for the best objective under constraints
    (docs/tune.md)."""
    import contextlib
    import os
    from concurrent.futures import BrokenExecutor

    from tqdm import tqdm

    from simulator.experiments.sweep_runner import dask_executor, local_executor
    from simulator.experiments.tune import format_tune, load_tune, run_tune
    from simulator.utils.files import check_output_dir

    check_output_dir(output, resume=resume, field="--output", what="a search")   # first
    plan = load_tune(scenario, space=list(spaces), objective=objective, direction=direction,
                     constraints=list(constraints), variant=variant, baseline=baseline,
                     budget=budget, seed=seed, batch=batch, rungs=rungs)
    with contextlib.ExitStack() as stack:
        if scheduler:
            executor, _ = stack.enter_context(dask_executor(scheduler))
        else:
            executor = stack.enter_context(local_executor(min(jobs or os.cpu_count() or 1,
                                                              batch)))
        bar = stack.enter_context(tqdm(total=budget, unit="trial", leave=False,
                                       disable=True if quiet else None, file=sys.stderr))
        try:
            outcome = run_tune(plan, executor, directory=output, resume=resume,
                               on_trial=lambda summary: bar.update())
        except BrokenExecutor as err:
            raise _OneLine(f"a worker stopped ({type(err).__name__}): the finished "
                           f"trials are kept in {output}/trials.jsonl; run the same "
                           "command with --resume", 1) from None
    echo(format_tune(plan, outcome))
    echo(f"files in {output}: plan.json, trials.jsonl, tune.json "
         "(sgdsim plot DIR --kind tune|pareto)")
    if outcome.interrupted:
        raise _OneLine(f"interrupted: {len(outcome.trials)} trials are kept in "
                       f"{output}/trials.jsonl; run the same command with --resume", 130)


def main():
    """Console entry point."""
    sgdsim(prog_name="sgdsim")


if __name__ == "__main__":
    sys.exit(main())
