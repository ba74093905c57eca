"""The seed's scenario played through the real pipeline (`cqrs demo`)."""

from cqrs.demo.scenario import Scenario, Step
from cqrs.demo.workers import Workers

__all__ = ["Scenario", "Step", "Workers"]
