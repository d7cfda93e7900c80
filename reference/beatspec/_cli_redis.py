"""Connection options shared by the commands that talk to Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from beatspec.connection import ConnectionOptions

__all__ = ["connection_options", "options_from"]

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(func: F) -> F:
    """Add --username/--password/TLS/Sentinel/Cluster options (each also from BEATSPEC_*)."""
    decorators = [
        click.option("--username", envvar="BEATSPEC_REDIS_USERNAME", default=None,
                     help="ACL user name (or in the URL)."),
        click.option("--password", envvar="BEATSPEC_REDIS_PASSWORD", default=None,
                     help="Password (prefer this variable to the URL; never printed)."),
        click.option("--tls-ca-cert", type=click.Path(exists=True, dir_okay=False),
                     default=None, help="CA bundle to verify a rediss:// server."),
        click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Client certificate (mutual TLS)."),
        click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Client private key (mutual TLS)."),
        click.option("--tls-insecure", is_flag=True,
                     help="Do not verify the server certificate (testing only)."),
        click.option("--sentinel", "sentinels", multiple=True, metavar="HOST:PORT",
                     help="Find the master through these Sentinels (repeatable); the URL then "
                     "gives only the database and credentials."),
        click.option("--sentinel-service", default="mymaster", show_default=True,
                     help="The master's service name at the Sentinels."),
        click.option("--sentinel-password", envvar="BEATSPEC_SENTINEL_PASSWORD", default=None,
                     help="Password of the Sentinels themselves."),
        click.option("--cluster", is_flag=True, help="The URL names a Redis Cluster node."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def options_from(kwargs: dict[str, Any]) -> ConnectionOptions:
    """Pop the connection options out of a command's keyword arguments."""
    return ConnectionOptions(
        username=kwargs.pop("username"),
        password=kwargs.pop("password"),
        tls_ca_cert=kwargs.pop("tls_ca_cert"),
        tls_cert=kwargs.pop("tls_cert"),
        tls_key=kwargs.pop("tls_key"),
        tls_insecure=kwargs.pop("tls_insecure"),
        sentinels=tuple(kwargs.pop("sentinels")),
        service=kwargs.pop("sentinel_service"),
        sentinel_password=kwargs.pop("sentinel_password"),
        cluster=kwargs.pop("cluster"),
    )
