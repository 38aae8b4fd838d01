"""The pytest plugin (registered by entry point: installing mtl-probe is enough).

    import pytest

    @pytest.mark.mtl_probe(model="model.keras", data="data.npz", samples=256, seed=0)
    def test_head_1_never_reads_tweet_b(probed):
        probed.assert_no_path("head_1", "tweet_b")
        probed.assert_independent("head_1", "tweet_b")
        probed.assert_depends("head_1", "tweet_a")

The `mtl_probe` marker names the model and data: paths (relative to the test file's folder),
or callables returning them, or objects. The `probed` fixture loads each model and data once
per test session, and every assertion on them shares one probe result per probe and settings
(the session's `probe_cache`), so a module of a dozen assertions runs one probe pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "mtl_probe(model, data, **settings): the model and data that the "
                   "`probed` fixture of mtl-probe loads once per session; settings are those "
                   "of probes.testing (method, samples, seed, delta, alpha, batch_size)")


@pytest.fixture(scope="session")
def probe_cache():
    """The session's cache of probe results (probes.testing.ProbeCache)."""
    from probes.testing import ProbeCache

    return ProbeCache()


@pytest.fixture(scope="session")
def _mtl_probe_loaded():
    return {}


class Probed:
    """A model and its data with the assertions of probes.testing bound to them."""

    def __init__(self, model, data, labels, cache, settings):
        self.model, self.data, self.labels = model, data, labels
        self.cache, self.settings = cache, settings

    def _kw(self, settings):
        return {"cache": self.cache, "labels": self.labels, **self.settings, **settings}

    def result(self, **settings):
        """(ProbeResult, Summary) of the marker's probe, from the session's cache."""
        from probes.testing import measure

        return measure(self.model, self.data, **self._kw(settings))

    def assert_depends(self, head, input, **settings):  # noqa: A002 (Keras' word)
        from probes.testing import assert_depends

        assert_depends(self.model, self.data, head, input, **self._kw(settings))

    def assert_independent(self, head, input, **settings):  # noqa: A002
        from probes.testing import assert_independent

        assert_independent(self.model, self.data, head, input, **self._kw(settings))

    def assert_no_path(self, head, input):  # noqa: A002
        from probes.testing import assert_no_path

        assert_no_path(self.model, head, input)

    def assert_dependencies(self, expected, **settings):
        from probes.testing import assert_dependencies

        assert_dependencies(self.model, self.data, expected, **self._kw(settings))


@pytest.fixture
def probed(request, probe_cache, _mtl_probe_loaded):
    """The marked model and data (loaded once per session), with the assertions bound."""
    marker = request.node.get_closest_marker("mtl_probe")
    if marker is None:
        pytest.fail("Expected @pytest.mark.mtl_probe(model=..., data=...) on a test that uses "
                    "the `probed` fixture; received none", pytrace=False)
    settings = dict(marker.kwargs)
    model, data = settings.pop("model", None), settings.pop("data", None)
    labels = settings.pop("labels", None)
    if model is None:
        pytest.fail("Expected mtl_probe(model=..., data=...); received no model", pytrace=False)
    folder = Path(str(request.node.fspath)).parent
    key = (_key(model, folder), _key(data, folder))
    if key not in _mtl_probe_loaded:
        _mtl_probe_loaded[key] = _load(model, data, labels, folder)
    model, data, labels = _mtl_probe_loaded[key]
    return Probed(model, data, labels, probe_cache, settings)


def _key(value, folder):
    if isinstance(value, (str, Path)):
        return str((folder / value).resolve())
    return id(value)


def _load(model, data, labels, folder):
    from probes.model.sources import resolve

    if callable(model) and not hasattr(model, "inputs"):
        model = model()
    if callable(data):
        data = data()
    src = resolve(folder / model if isinstance(model, (str, Path)) else model,
                  folder / data if isinstance(data, (str, Path)) else data, labels)
    return src.model, src.inputs, src.labels
