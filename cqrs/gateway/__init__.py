"""The HTTP gateway: a FastAPI app over the command client, the read models and the search index."""

from cqrs.gateway.app import create_app
from cqrs.gateway.auth import Authenticator
from cqrs.gateway.compose import CommandSender, ReadSide, Searcher, Services, build_services

__all__ = ["Authenticator", "CommandSender", "ReadSide", "Searcher", "Services", "build_services",
           "create_app"]
