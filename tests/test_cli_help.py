"""`ptft --help` and each command's help say what the command does, with an example that parses."""

from __future__ import annotations

import shlex

import pytest

from ptft.cli import SUBCOMMANDS, main, parser_for


def test_top_level_help_says_what_ptft_does_and_lists_an_example_per_command(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "fine-tunes and evaluates every pre-training checkpoint" in " ".join(out.split())
    assert "thin layer" not in out  # how it is built is not what it does
    for help_text, example in SUBCOMMANDS.values():
        assert f"  {example}\n" in out


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_each_command_help_has_its_example_and_the_example_parses(command, capsys):
    help_text, example = SUBCOMMANDS[command]
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert f"example:\n  {example}\n" in out
    assert " ".join(help_text.split()).lower() in " ".join(out.split()).lower()
    argv = shlex.split(example)[1:]
    assert parser_for(argv).parse_args(argv).command == command
