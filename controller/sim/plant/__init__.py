"""The plant model: the site's physics, shared by the simulator and the HIL rig."""

from controller.sim.plant.site import Plant, StepFlows

__all__ = ["Plant", "StepFlows"]
