"""The `probe` command: parse the options, call the library, print.

One module per group of commands, each a thin layer over the library and the demo
(`mtl_models`): the options they share (`options`), the model they work on (`select`), running
and saving a probe (`saved`, `common`), and what they print (`output`); no probe computation.
"""

from __future__ import annotations

import click

from probes.cli.check import check
from probes.cli.faithful import faithfulness, sanity
from probes.cli.merge import merge
from probes.cli.paths import paths
from probes.cli.probe import ablate, attribute
from probes.cli.report import report
from probes.cli.shared import shared
from probes.cli.sharing import sharing
from probes.cli.train import structure, train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mtl-probe")
def main():
    """Measure how information flows through Keras multi-task models that share weights."""


for _command in (report, train, structure, ablate, attribute, merge, faithfulness, sanity,
                 shared, sharing, paths, check):
    main.add_command(_command)
