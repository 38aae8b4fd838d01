"""The PDF: one page per figure, written atomically. Reads saved results only."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages

from probes.results import atomic
from reports.load import load_subject
from reports.pages_answer import page_answer, page_models
from reports.pages_paths import page_concat, page_provenance
from reports.pages_probes import page_accuracy, page_matrices
from reports.pages_sharing import page_sharing
from reports.pages_text import page_text
from reports.pages_trust import page_faithfulness, page_sanity
from reports.pages_weights import page_profiles, page_shared

# TrueType fonts keep the text searchable and extractable from the PDF (set while building
# only: importing reports changes no global matplotlib state).
STYLE = {"pdf.fonttype": 42}

# Every report has these pages, one per figure, whatever the models: a page with nothing to
# show for a model says so in a sentence, so the page count depends on nothing but this list.
PAGES = (page_answer, page_models, page_accuracy, page_matrices, page_profiles, page_text,
         page_faithfulness, page_sanity, page_shared, page_concat)


def build(subject_dirs, out, *, probe_names, samples: int, seed: int, png_dir=None,
          benchmark_png=None, sharing=None, html=None, progress=lambda line: None) -> Path:
    """Loads every subject directory and writes the report to `out` (and PNGs of the pages
    to `png_dir` if given, and the same results as a web page to `html` if given:
    reports.html). With `sharing` (a probes.results.transfer.SharingResult), one more page
    before the provenance page shows it. Returns the PDF path. Raises ValueError on a missing
    result."""
    subjects = [load_subject(d, probe_names, samples, seed) for d in subject_dirs]
    if html is not None:
        from reports.html import write_html

        progress(f"wrote {write_html(subjects, html, sharing=sharing)}")
    with matplotlib.rc_context(STYLE):
        return _write(subjects, out, png_dir, benchmark_png, sharing, progress)


def _write(subjects, out, png_dir, benchmark_png, sharing, progress) -> Path:
    figures = [page(subjects) for page in PAGES]
    if sharing is not None:
        figures.append(page_sharing(sharing))
    figures.append(page_provenance(subjects, benchmark_png))
    buf = io.BytesIO()
    with PdfPages(buf, metadata={"Title": "mtl-probe report: "
                                 + " vs ".join(s.label for s in subjects),
                                 "Creator": "mtl-probe"}) as pdf:
        for k, fig in enumerate(figures, 1):
            progress(f"page {k}/{len(figures)}")
            pdf.savefig(fig)
    path = atomic.write_bytes(Path(out), buf.getvalue())
    if png_dir is not None:
        png_dir = Path(png_dir)
        png_dir.mkdir(parents=True, exist_ok=True)
        for k, fig in enumerate(figures, 1):
            png = io.BytesIO()
            fig.savefig(png, format="png", dpi=110)
            atomic.write_bytes(png_dir / f"page-{k}.png", png.getvalue())
    return path
