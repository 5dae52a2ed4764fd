"""Assertions shared by the CLI tests (importable: pytest puts tests/ on sys.path)."""


def one_error_line(result):
    """Assert a click result failed as bad input: exit 2, one ``error:`` line on stderr, no
    traceback; return that line."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]
