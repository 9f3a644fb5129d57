"""Run converted SNNs."""

from ann2snn.simulate.model import SiteInfo, SpikingModel
from ann2snn.simulate.runner import SimResult, simulate

__all__ = ["SiteInfo", "SimResult", "SpikingModel", "simulate"]
