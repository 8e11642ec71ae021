"""Command line: `roost serve`, `roost config check`, and the registry commands of
`roost.cli_admin` (`roost tenant|device|credential|app|apikey ...`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from dataclasses import replace
from pathlib import Path

import click

from roost import __version__
from roost.cli_admin import GROUPS
from roost.config import Config, load
from roost.errors import ConfigError, RoostError


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _tune_gc() -> None:
    """Messages and packets are freed by reference counting; the cyclic collector only
    costs time on the hot path. Run it less often, and never over the objects of start-up."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _load(config_path: Path | None) -> Config:
    try:
        return load(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc


@click.group()
@click.version_option(__version__, prog_name="roost")
def main() -> None:
    """Roost: a self-hosted IoT device-connectivity platform and MQTT broker."""


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML config file.",
)
@click.option("--host", help="Address of the first listener (overrides the config).")
@click.option("--port", type=int, help="Port of the first listener (0 = any free port).")
@click.option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Worker processes sharing the listener ports (docs/workers.md; overrides the config).",
)
def serve(
    config_path: Path | None,
    host: str | None,
    port: int | None,
    log_level: str | None,
    workers: int | None,
) -> None:
    """Start the broker and serve until SIGINT / SIGTERM."""
    config = _load(config_path)
    first = config.listeners[0]
    if host is not None:
        first = replace(first, host=host)
    if port is not None:
        first = replace(first, port=port)
    config = replace(config, listeners=(first, *config.listeners[1:]))
    if log_level is not None:
        config = replace(config, log=replace(config.log, level=log_level.upper()))
    if workers is not None:
        config = replace(config, server=replace(config.server, workers=workers))
    logging.basicConfig(
        level=config.log.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from roost.server.server import RoostServer

    _install_uvloop()
    if config.server.workers > 1:
        _serve_workers(config)
        return
    _tune_gc()
    server = RoostServer(config)
    try:
        asyncio.run(server.serve_forever())
    except (OSError, RoostError) as exc:
        raise click.ClickException(f"cannot start: {exc}") from exc


def _serve_workers(config: Config) -> None:
    """`[server] workers` > 1: this process supervises that many forked workers."""
    from roost.cluster.supervisor import Supervisor
    from roost.server.server import RoostServer

    if any(listener.port == 0 for listener in config.listeners):
        raise click.ClickException("workers > 1 need fixed listener ports (port 0 given)")

    if config.registry.enabled or config.api.enabled:
        # Made (or migrated) once here, not by the workers at the same time.
        from roost.registry import Registry

        Registry.in_data_dir(config.store.data_dir, config.registry.scrypt_n).close()

    def run_worker(index: int) -> None:
        _tune_gc()
        asyncio.run(RoostServer(config, worker=index).serve_forever())

    sys.exit(Supervisor(config.server.workers, run_worker).run())


@main.group()
def config() -> None:
    """Configuration tools."""


@config.command("check")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def config_check(path: Path) -> None:
    """Validate a config file and print the effective settings."""
    cfg = _load(path)
    click.echo(f"ok: {len(cfg.listeners)} listener(s)")
    for listener in cfg.listeners:
        click.echo(f"  {listener.name}: {listener.transport} {listener.host}:{listener.port}")


for _group in GROUPS:
    main.add_command(_group)
