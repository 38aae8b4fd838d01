"""`probe ablate` and `probe attribute`: the dependency matrix."""

from __future__ import annotations

import click

from probes.cli.common import probe_command
from probes.cli.fanout import ray_options
from probes.cli.merge import shard_option
from probes.cli.options import model_options, probe_options
from probes.engine.gradients import QUADRATURES
from probes.methods.ablation import MODES
from probes.methods.attribution import METHODS, SPACES
from probes.methods.baselines import BASELINES


def _target(ctx, param, value):
    if value in ("predicted", "all"):
        return value
    if value.isdigit():
        return int(value)
    raise click.BadParameter(f"expected 'predicted', 'all' or a unit index >= 0; received "
                             f"{value!r}")


@click.command()
@model_options
@click.option("--mode", type=click.Choice(MODES), default="shuffle", show_default=True,
              help="How an input is ablated.")
@click.option("--permutations", type=click.IntRange(1, 1000), default=8, show_default=True,
              help="Draws per input for shuffle and noise.")
@click.option("--window", type=click.IntRange(1), default=None,
              help="Occlusion window in time steps [default: length / 14].")
@probe_options
@shard_option
@ray_options
def ablate(mode, samples, seed, permutations, window, batch_size, out_dir, as_json, shard, **kw):
    """How much each head depends on each input: ablate one input at a time and measure how
    far every head's output moves, with bootstrap intervals, a corrected test and a verdict
    per cell, checked against the model graph."""
    probe_command(kw, f"ablation/{mode}", samples, seed, out_dir, as_json,
                  {"permutations": permutations, "window": window, "batch_size": batch_size},
                  shard=shard)


@click.command()
@model_options
@click.option("--method", type=click.Choice(METHODS), default="integrated_gradients",
              show_default=True)
@click.option("--baseline", type=click.Choice(BASELINES), default="zero", show_default=True,
              help="Integrated gradients' starting point (shuffle: each sample's own steps "
                   "in a random order).")
@click.option("--steps", type=click.IntRange(1, 100000), default=None,
              help="Integrated gradients' path nodes [default: doubled from 8 until the "
                   "median relative completeness gap is under 1%].")
@click.option("--quadrature", type=click.Choice(QUADRATURES), default="gauss_legendre",
              show_default=True, help="Integrated gradients' nodes along the path: "
              "Gauss-Legendre, midpoint Riemann sum or trapezoid.")
@click.option("--space", type=click.Choice(SPACES), default="logit",
              show_default=True, help="Attribute the pre-sigmoid logit or the probability.")
@click.option("--target", default="predicted", show_default=True, callback=_target,
              help="The unit of a multi-unit head to attribute: 'predicted' (per sample, the "
                   "unit with the largest output), a unit index, or 'all' (one row per unit, "
                   "named head[unit]). Single-unit heads always use their one unit.")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="Also run ablation (shuffle) and report cells where the verdicts differ.")
@click.option("--maps", is_flag=True,
              help="Keep the signed attribution per element with the result (per time step "
                   "for sequence inputs: each character's or token's attribution).")
@click.option("--show", type=click.IntRange(0), multiple=True, metavar="K",
              help="Print sample K's inputs as text, each character coloured by every head's "
                   "signed attribution (implies --maps; repeatable).")
@click.option("--color", "colour", type=click.Choice(["auto", "always", "never"]),
              default="auto", show_default=True,
              help="Colour for --show (auto: on a terminal, unless NO_COLOR is set); without "
                   "colour a line of marks under the text says the same.")
@click.option("--dense-path", is_flag=True,
              help="Attribute one-hot inputs through the dense input matmul instead of their "
                   "gathered kernel rows (the same numbers to float32 rounding; on a GPU, "
                   "Keras' LSTM then runs on cuDNN).")
@probe_options
@shard_option
@ray_options
def attribute(method, baseline, steps, quadrature, space, target, compare, maps, show, colour,
              dense_path, samples, seed, batch_size, out_dir, as_json, shard, **kw):
    """Gradient attribution of every head to every input, with the same statistics and
    verdicts as `probe ablate`, and the cells where the two disagree; with --show, where in
    the text each head finds its evidence."""
    params = {"baseline": baseline, "steps": steps, "quadrature": quadrature, "space": space,
              "target": target, "batch_size": batch_size}
    if maps or show:
        params["maps"] = True
    if dense_path:
        params["one_hot_path"] = False
    probe_command(kw, f"attribution/{method}", samples, seed, out_dir, as_json, params,
                  compare=compare, show=show, colour=colour, shard=shard)
