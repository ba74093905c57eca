"""`cqrs top`: a live view of the pipeline, from the processes' own /metrics endpoints."""

from cqrs.top.frame import Endpoint, Frame, build_frame, render
from cqrs.top.scrape import Sample, Scrape, scrape

__all__ = ["Endpoint", "Frame", "Sample", "Scrape", "build_frame", "render", "scrape"]
