"""Entry points: the `cqrs` command line, the HTTP gateway and the native service runner."""
