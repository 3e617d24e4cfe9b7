"""The chart rendered once per session: with the values every install must give
(values.yaml otherwise), and with values-production.yaml."""

import pytest

from tests.deploy import chart


@pytest.fixture(scope="session")
def default_objects():
    return chart.manifests(chart.REQUIRED_VALUES)


@pytest.fixture(scope="session")
def production_objects():
    return chart.manifests(chart.production_values())


@pytest.fixture(scope="session", params=["default", "production"])
def objects(request, default_objects, production_objects):
    """Each test taking this runs once per value set."""
    return {"default": default_objects, "production": production_objects}[request.param]
