"""`python -m cqrs` runs the command line."""

from cqrs.cli import main

main()
