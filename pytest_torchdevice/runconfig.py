"""The run's configuration: the key manifest entries and merged reports are filed under.

Two runs are "the same configuration" when they redirect the same source device type to the same target
device type under the same simulated limits (and, where MPS limits apply, the same float64 policy): e.g.
``cuda->cpu``, ``cuda->cpu simulate=mps``, ``cuda->mps``, ``mps->cpu``, ``cuda+mps->cpu`` (``--source-device=auto``
on a CPU target redirects both).  Device indices are left out, so the
workers of one xdist run on ``cuda:0`` and ``cuda:1`` share one configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import PluginState

OFF = "off"


def configuration(source: str, target_type: str, simulate: str | None = None, mps_float64: str | None = None) -> str:
    text = f"{source}->{target_type.split(':')[0]}"
    if simulate:
        text += f" simulate={simulate}"
    mps_limits = simulate == "mps" or target_type.startswith("mps")
    if mps_limits and mps_float64 and mps_float64 != "error":
        text += f" mps_float64={mps_float64}"
    return text


def of_state(state: PluginState | None) -> str:
    """The configuration of a ``runtime.PluginState`` (``off`` when nothing is redirected)."""
    redirection = state.redirection if state is not None else None
    if state is None or redirection is None:
        return OFF
    settings = state.settings
    sources = "+".join(redirection.sources)  # what is redirected
    return configuration(sources, redirection.target.device.type, settings.simulate_limits, settings.mps_float64)


def of_report(data: dict[str, Any]) -> str:
    """The configuration a ``--torchdevice-report`` JSON was written under (older reports: from its fields)."""
    if data.get("configuration"):
        return str(data["configuration"])
    target = str(data.get("target") or OFF)
    if target == OFF:
        return OFF
    return configuration(str(data.get("source") or "cuda"), target, data.get("simulate_limits"),
                         data.get("mps_float64"))
