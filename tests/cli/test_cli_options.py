"""The command line's choices and defaults are the library's: no copies in actionpipe/cli/, every library
name they point at exists, help quotes the library's numbers, and importing the CLI stays light."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click

from actionpipe.cli.main import main
from helpers import REPO
from actionpipe.cli.options import LibraryChoice, LibraryDefault

CLI_MODULES = sorted((REPO / "actionpipe").glob("cli/*.py"))
assert CLI_MODULES, "no click modules found under actionpipe/cli/"


def _options():
    for name, command in main.commands.items():
        for param in command.params:
            yield f"{name} {param.opts[0]}", param


def test_no_literal_choice_lists_in_the_cli():
    for path in CLI_MODULES:
        literal = re.findall(r"click\.Choice\(\s*[\[(]", path.read_text())
        assert not literal, f"{path.name}: a click.Choice of a literal list (use LibraryChoice or the constant)"


def test_every_library_choice_and_default_resolves():
    resolved = 0
    for where, param in _options():
        if isinstance(param.type, LibraryChoice):
            assert param.type.choices and all(isinstance(c, str) for c in param.type.choices), where
            resolved += 1
        if isinstance(param.default, LibraryDefault):
            value = param.default()
            assert value is not None, where
            if isinstance(param.type, click.Choice):
                assert value in param.type.choices, where
            resolved += 1
    assert resolved >= 20


def test_help_quotes_the_librarys_defaults(run_cli):
    from actionpipe.skeleton.convert import DEFAULT_FPS, KINETICS_SIZE
    from actionpipe.video.extract import DEFAULT_JPEG_QUALITY
    from actionpipe.core.limits import MAX_POSE_BATCH
    from actionpipe.pose.estimator import DEFAULT_BATCH, DEFAULT_CONF, DEFAULT_IMGSZ

    def help_text(command: str) -> str:
        return " ".join(run_cli(command, "--help").stdout.split())

    pose = help_text("pose")
    assert f"the model card's, else {DEFAULT_IMGSZ}" in pose and f"the model card's, else {DEFAULT_CONF}" in pose
    assert f"[default: {DEFAULT_BATCH}; 1<=x<={MAX_POSE_BATCH}]" in pose
    assert f"Default: {DEFAULT_JPEG_QUALITY}." in help_text("extract")
    convert = help_text("convert")
    assert f"Kinetics default {KINETICS_SIZE[0]}" in convert and f"Kinetics default {KINETICS_SIZE[1]}" in convert
    assert f"(default {DEFAULT_FPS:g})" in convert


def test_no_help_text_is_left_with_a_placeholder(run_cli):
    for name in main.commands:
        text = run_cli(name, "--help").stdout
        assert not re.search(r"\{[a-z_.]+:[A-Z_0-9]+", text), f"{name} --help: {text}"


def test_no_help_text_quotes_a_default_number_of_its_own():
    for path in CLI_MODULES:
        quoted = re.findall(r"[Dd]efault:? \d[\d.]*", path.read_text())
        assert not quoted, f"{path.name}: {quoted} (quote the library's constant: LibraryTextOption)"


def test_importing_the_cli_loads_neither_numpy_nor_opencv():
    code = ("import sys; from actionpipe.cli.main import main; "
            "print([m for m in ('numpy', 'cv2', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
