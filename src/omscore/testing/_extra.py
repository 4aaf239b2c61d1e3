"""What the test tools of ``omscore.testing`` need beyond omscore's own dependencies."""

from __future__ import annotations

#: The extra that installs pytest and Hypothesis for the contract kit and the strategies.
TESTING_EXTRA = 'pip install "omscore[testing]"'


def missing_test_tool(module: str, needs: str, missing: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error for importing ``module`` without a tool it ``needs`` (e.g. "pytest and
    Hypothesis"): it names the missing package and the extra that installs it."""
    return ModuleNotFoundError(
        f"{module} needs {needs}, and {missing.name!r} is not installed: {TESTING_EXTRA}",
        name=missing.name,
    )
