"""`cqrs gateway [--host --port ...]`: serve the HTTP gateway with uvicorn; `cqrs gateway keys`:
its API keys (`cqrs.cli.gateway_keys`).

`gateway` is a group whose callback serves when no subcommand follows, so `cqrs gateway --port
8000` is the same command it always was, and `cqrs gateway keys add NAME` manages keys.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import uvicorn

from cqrs.cli import gateway_keys
from cqrs.cli.boot import bootstrap, configure_logging
from cqrs.gateway import create_app
from cqrs.gateway.auth import Authenticator
from cqrs.gateway.keyring import Keyring
from cqrs.gateway.keys import KeysFileError

log = logging.getLogger(__name__)

app = typer.Typer(help="Serve the gateway (no subcommand), or manage its API keys (keys).")
app.add_typer(gateway_keys.app, name="keys")

KeysFile = Annotated[Path | None, typer.Option(
    "--keys-file", dir_okay=False,
    help="API keys file (`cqrs gateway keys add`): command routes need a key of scope "
    "`commands` (or CQRS_GATEWAY_KEYS_FILE).")]


@app.callback(invoke_without_command=True)
def gateway(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    log_level: Annotated[str | None, typer.Option(
        help="debug logs one line per command (default: `cqrs --log-level`, else info).",
    )] = None,
    keys_file: KeysFile = None,
    queries_need_key: Annotated[bool, typer.Option(
        "--queries-need-key", help="Query routes need a key too (any scope) "
        "[env: CQRS_GATEWAY_QUERIES_NEED_KEY].")] = False,
    allow_unauthenticated: Annotated[bool, typer.Option(
        "--allow-unauthenticated", help="Serve without a keys file on a non-loopback --host "
        "(refused otherwise).")] = False,
    tls_cert: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, readable=True,
        help="TLS certificate chain (PEM): serve HTTPS (or CQRS_GATEWAY_TLS_CERT).")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, readable=True,
        help="The certificate's private key (PEM) (or CQRS_GATEWAY_TLS_KEY).")] = None,
) -> None:
    """Serve the commands and queries over HTTP (OpenAPI docs at /docs, health at /healthz,
    /livez and /readyz, Prometheus metrics at /metrics). `cqrs gateway keys --help`: API keys."""
    if ctx.invoked_subcommand is not None:
        _only_keys_file(ctx)
        ctx.meta[gateway_keys.KEYS_FILE] = keys_file
        return
    level = configure_logging(ctx, log_level)["root"]["level"].lower()
    boot = bootstrap(ctx, "client")
    settings = boot.settings
    tls = _tls(tls_cert or settings.gateway_tls_cert, tls_key or settings.gateway_tls_key)
    authenticator = _authenticator(keys_file or settings.gateway_keys_file,
                                   queries_need_key or settings.gateway_queries_need_key)
    if authenticator is None and not allow_unauthenticated and not is_loopback(host):
        _fail(f"refusing to serve {host} without API keys: anyone who reaches it could send "
              "commands",
              "create a key with `cqrs gateway keys add NAME --scope commands --keys-file PATH` "
              "and serve with `--keys-file PATH` (or CQRS_GATEWAY_KEYS_FILE=PATH); or pass "
              "--allow-unauthenticated if a proxy in front authenticates")
    if authenticator is not None and not tls and not is_loopback(host):
        log.warning("API keys will travel in clear: serving plain HTTP on a non-loopback "
                    "address (--tls-cert/--tls-key, or TLS in a proxy in front)",
                    extra={"host": host})
    app = create_app(boot.open_services, prefix=boot.config.prefix, authenticator=authenticator)
    # log_config=None: uvicorn's records go through the process's handler (JSON lines).
    uvicorn.run(app, host=host, port=port, log_level=level, log_config=None, **tls)


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (`localhost`, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _authenticator(keys_file: Path | None, queries_need_key: bool) -> Authenticator | None:
    if keys_file is None:
        if queries_need_key:
            _fail("--queries-need-key needs a keys file",
                  "pass --keys-file PATH (or set CQRS_GATEWAY_KEYS_FILE)")
        return None
    try:
        keyring = Keyring(keys_file)
    except KeysFileError as error:
        _fail(str(error), "create it with `cqrs gateway keys add NAME --scope commands "
              f"--keys-file {keys_file}`")
    if not len(keyring):
        typer.echo(f"warning: {keys_file} holds no key: every command will be refused 401 "
                   "until one is added (`cqrs gateway keys add`)", err=True)
    return Authenticator(keyring, queries_need_key)


def _tls(cert: Path | None, key: Path | None) -> dict[str, Any]:
    if (cert is None) != (key is None):
        _fail("--tls-cert and --tls-key go together", "pass both (PEM files), or neither")
    return {} if cert is None else {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def _only_keys_file(ctx: typer.Context) -> None:
    """`cqrs gateway --port 1 keys list` would ignore --port: refuse it rather than guess."""
    given = [name for name in ctx.params if name != "keys_file"
             and getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise typer.BadParameter(f"{options}: options of serving the gateway, not of "
                                 f"`cqrs gateway {ctx.invoked_subcommand}`")


def _fail(message: str, hint: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    typer.echo(f"hint: {hint}", err=True)
    raise typer.Exit(2)
