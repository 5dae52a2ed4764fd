"""Shipped topologies, scenarios and schemas: named, listed, copied out, found from anywhere."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import networkx as nx
import pytest
import yaml
from helpers import one_error_line

from simulator.cluster.topology import load_topology
from simulator.experiments.scenario import load_scenario
from simulator.utils.errors import InputError
from simulator.utils.shipped import catalog, resolve, shipped_dir, shipped_files
from simulator.utils.yamlfile import load_schema

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_folders_are_the_checkouts_own():
    for kind in ("topologies", "scenarios", "schemas"):
        assert shipped_dir(kind).resolve() == (ROOT / kind).resolve()
    assert set(shipped_files("topologies")) == {p.stem for p in (ROOT / "topologies").glob("*.yaml")}


def test_every_shipped_file_has_a_description_and_every_scenario_loads():
    for kind in ("topologies", "scenarios"):
        for name, (what, description) in catalog(kind).items():
            assert description, f"{kind}/{name} has no description"
            if what == "topology":
                load_topology(name)
            elif what == "scenario":
                load_scenario(name)


def test_a_name_resolves_to_the_shipped_file_and_a_path_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Path(resolve("topologies", "seed_8x2")).resolve() == \
        (ROOT / "topologies" / "seed_8x2.yaml").resolve()
    assert len(load_topology("seed_8x2")) == 25
    # a file of that exact name in the current directory wins over the shipped one
    Path("seed_8x2").write_text("blocks: 1\ngpus_per_block: 2\n"
                                "gpu: {peak_flops: 1 TFLOP/s, efficiency: 0.5}\n"
                                "intra_block: {bandwidth: 1 GB/s, latency: 1 us}\n"
                                "inter_block: {bandwidth: 1 GB/s, latency: 1 us}\n")
    assert resolve("topologies", "seed_8x2") == "seed_8x2"
    with pytest.raises(InputError) as info:
        resolve("topologies", "sed_8x2")
    assert "did you mean 'seed_8x2'?" in str(info.value)


def test_run_and_topology_take_shipped_names(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "blocks_2x8", "-q", "--steps", "3", "--topology", "blocks_8x2",
                     "-o", "r.json")
    assert result.exit_code == 0, result.output
    document = json.loads(Path("r.json").read_text())
    assert document["topology"] == "blocks_8x2" and document["source"] == "blocks_2x8"
    assert run_cli("topology", "validate", "two_datacenter").exit_code == 0
    line = one_error_line(run_cli("run", "larg_batch"))
    assert "did you mean 'large_batch'?" in line and "sgdsim scenario list" in line


def test_lists_name_every_shipped_file_with_its_description(run_cli):
    result = run_cli("scenario", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(shipped_files("scenarios"))
    default = next(line for line in lines if line.startswith("default "))
    assert "scenario" in default and catalog("scenarios")["default"][1] in default
    assert any(line.startswith("regress ") and " suite " in line for line in lines)
    assert any(line.startswith("scaling_study ") and " sweep " in line for line in lines)
    result = run_cli("topology", "list")
    assert [line.split()[0] for line in result.stdout.splitlines()] == \
        list(shipped_files("topologies"))


def test_a_copied_scenario_runs_from_elsewhere_and_its_schema_comment_resolves(
        run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    result = run_cli("scenario", "copy", "large_batch", "mine")
    assert result.exit_code == 0, result.output
    copy = tmp_path / "mine" / "large_batch.yaml"
    first, *rest = copy.read_text().splitlines()
    original = (ROOT / "scenarios" / "large_batch.yaml").read_text().splitlines()
    assert rest == original[1:]                       # the same file but its schema comment
    ref = first.removeprefix("# yaml-language-server: $schema=")
    assert (copy.parent / ref).resolve() == (ROOT / "schemas" / "scenario.schema.json").resolve()
    assert load_scenario(copy).name == "large-batch"
    line = one_error_line(run_cli("scenario", "copy", "large_batch", "mine"))
    assert "exists" in line and "--force" in line
    assert run_cli("scenario", "copy", "large_batch", "mine", "--force").exit_code == 0
    assert "did you mean 'large_batch'?" in one_error_line(run_cli("scenario", "copy", "large_bach"))
    assert "no such directory" in one_error_line(run_cli("topology", "copy", "seed_8x2",
                                                         "nowhere/t.yaml"))


def test_copying_the_suite_brings_its_baseline_and_it_passes_there(run_cli, tmp_path):
    result = run_cli("scenario", "copy", "regress", tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["regress.yaml", "regress_baseline.json"]
    assert (tmp_path / "regress_baseline.json").read_bytes() == \
        (ROOT / "scenarios" / "regress_baseline.json").read_bytes()


@pytest.mark.parametrize("name", ["topology", "scenario", "regress"])
def test_schema_prints_and_writes_the_shipped_schema(run_cli, tmp_path, name):
    printed = run_cli("schema", name).stdout
    assert run_cli("schema", name, "-o", tmp_path / "s.json").exit_code == 0
    assert (tmp_path / "s.json").read_text() == printed
    assert run_cli("schema", name, "-o", "-").stdout == printed
    schema = json.loads(printed)
    # It stands alone: every reference is inside the document, and it is the shipped schema
    # with the schemas it names embedded.
    refs = [node["$ref"] for node in _mappings(schema) if "$ref" in node]
    assert refs and all(ref.startswith("#") for ref in refs)
    shipped = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
    assert shipped.get("properties", {}).keys() == schema.get("properties", {}).keys()
    assert shipped.get("oneOf") == schema.get("oneOf")
    embedded = {"topology": [], "scenario": ["sgdsim-topology"],
                "regress": ["sgdsim-scenario", "sgdsim-topology"]}[name]
    assert sorted(k for k in schema.get("$defs", {}) if k.startswith("sgdsim-")) == embedded
    jsonschema.Draft202012Validator.check_schema(schema)


def _mappings(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _mappings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _mappings(value)


@pytest.mark.parametrize("kind, schema", [("topologies", "topology"), ("scenarios", None)])
def test_every_shipped_file_is_valid_under_the_standalone_schema(kind, schema):
    """The bundled schema (what editors get from 'sgdsim schema') accepts every shipped file:
    inline topologies in scenarios and inline scenarios in the suite included."""
    for name, path in shipped_files(kind).items():
        if path.suffix not in (".yaml", ".yml"):
            continue
        data = yaml.safe_load(path.read_text())
        which = schema or ("regress" if "scenarios" in data else "scenario")
        errors = list(jsonschema.Draft202012Validator(load_schema(which)).iter_errors(data))
        assert not errors, (name, [e.message for e in errors[:3]])


def test_a_generated_topology_points_at_the_schema_from_where_it_is(run_cli, tmp_path,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("topology", "generate", "ring", "--n", "4")
    (tmp_path / "ring.yaml").write_text(result.stdout)
    ref = result.stdout.splitlines()[0].removeprefix("# yaml-language-server: $schema=")
    assert (tmp_path / ref).resolve() == (ROOT / "schemas" / "topology.schema.json").resolve()
    assert nx.utils.graphs_equal(load_topology("ring.yaml"), load_topology(tmp_path / "ring.yaml"))


def test_python_m_simulator_is_the_command_even_beside_a_cli_py(tmp_path):
    (tmp_path / "cli.py").write_text("raise SystemExit('the wrong cli.py')\n")
    result = subprocess.run([sys.executable, "-m", "simulator", "--version"], cwd=tmp_path,
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr
    import simulator

    assert result.stdout.strip() == f"sgdsim, version {simulator.__version__}"
