"""Connection options shared by the commands that talk to Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from beatspec.connection import ConnectionOptions

__all__ = ["connection_options", "options_from"]

F = TypeVar("F", bound=Callable[..., Any])


def _env_option(*names: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    """An option that can also come from the environment variable ``env`` (shown in --help)."""
    return click.option(*names, envvar=env, show_envvar=True, **kwargs)


def connection_options(func: F) -> F:
    """Add --username/--password/TLS/Sentinel/Cluster options (each also from BEATSPEC_*)."""
    decorators = [
        _env_option("--username", env="BEATSPEC_REDIS_USERNAME", default=None,
                    help="ACL user name (or in the URL)."),
        _env_option("--password", env="BEATSPEC_REDIS_PASSWORD", default=None,
                    help="Password (prefer this variable to the URL; never printed)."),
        _env_option("--tls-ca-cert", env="BEATSPEC_TLS_CA_CERT",
                    type=click.Path(exists=True, dir_okay=False), default=None,
                    help="CA bundle to verify a rediss:// server."),
        _env_option("--tls-cert", env="BEATSPEC_TLS_CERT",
                    type=click.Path(exists=True, dir_okay=False), default=None,
                    help="Client certificate (mutual TLS)."),
        _env_option("--tls-key", env="BEATSPEC_TLS_KEY",
                    type=click.Path(exists=True, dir_okay=False), default=None,
                    help="Client private key (mutual TLS)."),
        _env_option("--tls-insecure", env="BEATSPEC_TLS_INSECURE", is_flag=True,
                    help="Do not verify the server certificate (testing only)."),
        _env_option("--sentinel", "sentinels", env="BEATSPEC_SENTINEL", multiple=True,
                    metavar="HOST:PORT",
                    help="Find the master through these Sentinels (repeatable; in the variable, "
                    "separated by spaces); the URL then gives only the database and "
                    "credentials."),
        _env_option("--sentinel-service", env="BEATSPEC_SENTINEL_SERVICE", default="mymaster",
                    show_default=True, help="The master's service name at the Sentinels."),
        _env_option("--sentinel-password", env="BEATSPEC_SENTINEL_PASSWORD", default=None,
                    help="Password of the Sentinels themselves."),
        _env_option("--cluster", env="BEATSPEC_CLUSTER", is_flag=True,
                    help="The URL names a Redis Cluster node."),
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
