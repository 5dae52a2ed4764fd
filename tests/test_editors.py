"""Editors: yaml-language-server, driven as a real editor client, on sgdsim's files.

Checked: every shipped file opens without a problem (so every ``$schema`` comment names a
schema that exists); inline topologies in scenarios and inline scenarios in suites get
completion and inline errors; unit errors read like the CLI's own messages; the schema
'sgdsim schema' writes works from any folder, as in the README's example.

Skipped without yaml-language-server (``npm install -g yaml-language-server``, or point
``$SGDSIM_YAML_LANGUAGE_SERVER`` at its executable); one server serves the whole module.
"""

import re
import shutil
from pathlib import Path

import pytest
from helpers import TINY_TOPOLOGY, one_error_line
from lsp_client import YamlLanguageServer, find_server

from simulator.utils.shipped import shipped_files

ROOT = Path(__file__).resolve().parent.parent
SERVER = find_server()
pytestmark = pytest.mark.skipif(SERVER is None, reason="yaml-language-server not installed")

TOPOLOGY = TINY_TOPOLOGY


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A copy of the checkout's shipped folders (so that relative $schema paths hold)."""
    root = tmp_path_factory.mktemp("workspace")
    for folder in ("schemas", "scenarios", "topologies"):
        shutil.copytree(ROOT / folder, root / folder)
    return root


@pytest.fixture(scope="module")
def server(workspace):
    client = YamlLanguageServer(SERVER, workspace)
    yield client
    client.close()


def scenario_text(topology=TOPOLOGY, schema="../schemas/scenario.schema.json"):
    return (f"# yaml-language-server: $schema={schema}\ntopology:\n{topology}"
            "variants: [{algorithm: local, H: 2}]\ntarget_accuracy: 0.5\nsteps: 4\n")


def test_every_shipped_file_opens_without_a_problem(server, workspace):
    names = [(kind, name) for kind in ("topologies", "scenarios")
             for name, path in shipped_files(kind).items() if path.suffix == ".yaml"]
    assert len(names) > 10
    for kind, name in names:
        assert server.problems(workspace / kind / f"{name}.yaml") == [], (kind, name)


def test_an_inline_topology_gets_inline_errors_and_completion(server, workspace):
    folder = workspace / "scenarios"
    assert server.problems(folder / "good.yaml", scenario_text()) == []
    typo = scenario_text(TOPOLOGY.replace("{bandwidth: 10 Gbit/s", "{bandwith: 10 Gbit/s"))
    problems = server.problems(folder / "typo.yaml", typo)
    assert (7, "Property bandwith is not allowed.") in problems
    labels = server.completions(folder / "half.yaml", scenario_text("  blocks: 2\n  \n"), 3, 2)
    assert {"gpus_per_block", "gpu", "intra_block", "inter_block"} <= set(labels)


def test_an_inline_scenario_in_a_suite_gets_errors_and_completion(server, workspace):
    folder = workspace / "scenarios"
    head = "# yaml-language-server: $schema=../schemas/regress.schema.json\n"
    inline = ("scenarios:\n  - name: x\n    scenario:\n      topology:\n"
              + TOPOLOGY.replace("  ", "        ", 5)
              + "      variants: [{algorithm: local, H: 2}]\n      target_accuracy: 0.5\n"
                "      steps: 4\n")
    assert server.problems(folder / "suite.yaml", head + inline) == []
    problems = server.problems(folder / "suite-typo.yaml",
                               head + inline.replace("steps: 4", "stepz: 4"))
    assert any("stepz" in message for _, message in problems)
    labels = server.completions(folder / "suite-half.yaml",
                                head + "scenarios:\n  - name: x\n    scenario:\n      \n", 4, 6)
    assert {"topology", "variants", "target_accuracy", "workload"} <= set(labels)


@pytest.mark.parametrize("field, written, kind", [
    ("latency", "5 uss", "time"), ("bandwidth", "10 Gbit", "bandwidth")])
def test_unit_errors_read_like_the_cli(server, workspace, run_cli, field, written, kind):
    text = TOPOLOGY.replace("  ", "", 5).replace(
        {"latency": "latency: 5 us", "bandwidth": "bandwidth: 10 Gbit/s"}[field],
        f"{field}: {written}")
    head = "# yaml-language-server: $schema=../schemas/topology.schema.json\n"
    path = workspace / "topologies" / f"bad-{field}.yaml"
    path.write_text(head + text)
    [(line, message)] = server.problems(path)
    cli = one_error_line(run_cli("topology", "validate", path))
    fix = re.search(r"\((write .*)\)$", cli).group(1)
    assert message == f"not a {kind}: {fix}"                     # the CLI's own words
    assert f"inter_block.{field}: '{written}' is not a {kind}" in cli
    assert "[0-9]" not in message and "\\s" not in message      # no regular expression


def test_the_written_schema_works_from_any_folder_as_in_the_readme(server, workspace, run_cli):
    folder = workspace / "elsewhere"
    folder.mkdir()
    assert run_cli("schema", "topology", "-o", folder / "topology.schema.json").exit_code == 0
    assert run_cli("schema", "scenario", "-o", folder / "scenario.schema.json").exit_code == 0
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```yaml\n(# yaml-language-server: \$schema=topology\.schema\.json\n"
                        r".*?)```", readme, re.S).group(1)
    assert server.problems(folder / "racks.yaml", example) == []
    typo = scenario_text(TOPOLOGY.replace("gpus_per_block", "gpus_per_blok"),
                         schema="scenario.schema.json")
    problems = server.problems(folder / "mine.yaml", typo)
    assert any("gpus_per_blok" in message for _, message in problems)
