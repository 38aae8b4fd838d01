"""`probe shared`: what the heads' tasks do to the weights they share."""

from __future__ import annotations

import json

import click

from probes.cli.options import model_options

from probes.cli.output import progress

from probes.cli.saved import saved_results

from probes.cli.select import source
from probes.model.sources import DEFAULT_BATCH, DEFAULT_SAMPLES
from probes.results.text import table


@click.command()
@model_options
@click.option("--samples", type=click.IntRange(1), default=None,
              help=f"Held-out pairs or --data rows [default: {DEFAULT_SAMPLES}, or all if "
                   "fewer].")
@click.option("--minibatch", type=click.IntRange(2), default=64, show_default=True,
              help="Samples per mini-batch for the gradient cosine and conflict rate.")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=1e-2,
              show_default=True, help="Size of the coupling probe's single gradient step.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH,
              show_default=True,
              help="Rows per pass; bounds memory.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for the results (shared-agreement-n<N>-seed<S>.json, "
                   "shared-coupling-...) [default: the run directory's probes/; none for "
                   "--model].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def shared(samples, minibatch, learning_rate, seed, batch_size, out_dir, as_json, **kw):
    """The link through shared weights: each task's loss gradient on every layer two heads
    share (norms, cosine, conflict rate), recorded over training and at the final weights;
    how far one task's gradient step moves the other heads (a step on a head's own weights
    must move the others by exactly 0.0); and the lookahead task affinity."""

    from probes.methods.taskgrads import shared_layers

    src = source(kw, samples)
    n = len(next(iter(src.inputs.values())))
    plan = [("shared/coupling", {"learning_rate": learning_rate, "batch_size": batch_size})]
    nothing = not shared_layers(src.model)
    if nothing:  # no task gradients to compare; the coupling shows the tasks are not linked
        progress(NOTHING_SHARED)
    else:
        progress(f"task gradients of {src.name} on {n} samples ...")
        plan.insert(0, ("shared/agreement", {"batch_size": minibatch}))
    saved = saved_results(src, plan, n, seed, out_dir)
    agree, couple = saved.get("shared/agreement"), saved["shared/coupling"]
    training = None
    if src.run_dir is not None:
        from mtl_models import runs

        training = runs.load_run(src.run_dir).taskgrads()
    record = {"probe": "shared", "model": src.name, "samples": n, "seed": seed,
              "shared_layers": sorted(shared_layers(src.model)),
              "agreement": agree.to_json() if agree else None, "coupling": couple.to_json(),
              "training": training}
    if as_json:
        click.echo(json.dumps(record))
        return
    _print(agree, couple, training)


NOTHING_SHARED = ("nothing is shared: no layer has weights used by two heads, so there are no "
                  "task gradients to compare, and a step on one task must move every other "
                  "head by exactly 0.0")


def _print(agree, couple, training):
    import numpy as np

    heads = couple.heads
    if agree is None:
        click.echo(NOTHING_SHARED)
        _print_coupling(couple, heads)
        return
    pairs = [(a, b) for a in range(len(heads)) for b in range(a + 1, len(heads))]
    click.echo(f"task gradients on the shared weights, {agree.params['batches']} mini-batches "
               f"of {agree.params['batch_size']}:")
    rows = []
    for g, group in enumerate(agree.groups):
        for a, b in pairs:
            rows.append([group, f"{heads[a]} . {heads[b]}",
                         f"{agree.cosine[:, g, a, b].mean():.3f}",
                         f"{agree.full_cosine[g, a, b]:.3f}",
                         f"{agree.conflict_rate()[g, a, b]:.2f}",
                         f"{agree.norms[:, g, a].mean():.3g} / {agree.norms[:, g, b].mean():.3g}"])
    click.echo(table(["layer", "heads", "cosine (mean)", "cosine (all)", "conflict rate",
                      "norms"], rows, align="llrrrr"))
    click.echo("")
    _print_coupling(couple, heads)
    if training and training["records"]:
        click.echo("")
        click.echo(f"over training (every {training['every']} steps, "
                   f"{training['probe_samples']} validation pairs):")
        group = len(training["groups"]) - 1  # "(all shared)" when there are several
        rows = []
        for r in training["records"]:
            row = [r["step"]] + [f"{x:.3f}" for x in r["losses"]]
            row += [f"{r['cosine'][group][a][b]:+.3f}" for a, b in pairs]
            row += [f"{r['affinity'][a][b]:+.2e}" for a in range(len(heads))
                    for b in range(len(heads)) if a != b]
            rows.append(row)
        click.echo(table(["step"] + [f"loss {h}" for h in heads]
                         + [f"cos {heads[a]}.{heads[b]}" for a, b in pairs]
                         + [f"affinity {heads[a]}->{heads[b]}" for a in range(len(heads))
                            for b in range(len(heads)) if a != b], rows))
        cos = np.array([[r["cosine"][group][a][b] for a, b in pairs]
                        for r in training["records"]])
        click.echo(f"conflict rate over training ({training['groups'][group]}): "
                   + ", ".join(f"{heads[a]}.{heads[b]} {np.mean(cos[:, k] < 0):.2f}"
                               for k, (a, b) in enumerate(pairs)))


def _print_coupling(couple, heads):
    click.echo(f"coupling: one gradient step (lr {couple.params['learning_rate']}) on one task's "
               "loss; mean |change| of each head's output")
    rows = [[head, other, f"{couple.moved[j, i]:.3g}", f"{couple.moved_control[j, i]:.3g}",
             f"{couple.loss_change[j, i]:.3g}", f"{couple.predicted[j, i]:.3g}"]
            for j, head in enumerate(heads) for i, other in enumerate(heads)]
    click.echo(table(["step on", "head", "moved (all weights)", "moved (own weights only)",
                      "loss change", "predicted -lr<g_i,g_j>"], rows, align="llrrrr"))
