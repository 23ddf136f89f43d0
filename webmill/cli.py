"""The ``webmill`` command line.

Global options pick the corpus root, the Ray cluster and the config file, before
or after the verb (``webmill.global_options``); each
verb that does work ends with a human summary, or with ``--json`` one JSON
object on the last line for schedulers and scripts.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Callable

import click

from webmill import __version__
from webmill.config import Config, load_config
from webmill.errors import UserError
from webmill.printable import printable


@dataclass
class Context:
    root_uri: str
    ray_address: str | None
    config_path: str | None
    verbosity: int = 0
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def root(self, *, create: bool = True, writable: bool = True):
        from webmill.shards.root import CorpusRoot

        return CorpusRoot.open(self.root_uri, create=create, writable=writable)

    def ray(self):
        from webmill.runtime import check_root_on_cluster, ensure_ray

        ray = ensure_ray(self.ray_address, quiet=self.verbosity <= 0)
        check_root_on_cluster(ray, self.root_uri, shared=self.config.root.shared_filesystem)
        return ray

    def say(self, msg: str) -> None:
        if self.verbosity >= 0:
            click.echo(printable(msg), err=True)


pass_ctx = click.make_pass_decorator(Context)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="print one JSON object on the last line")(f)


def finish(as_json: bool, summary: dict, lines: list[str]) -> None:
    """End a verb: the human summary, or one JSON object on the last line."""
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True, default=str))
    else:
        for line in lines:
            click.echo(printable(line))


def not_built(verb: str, issue: int) -> Callable:
    def run(**_):
        raise UserError(f"webmill {verb}: not built yet (issue #{issue})")

    return run


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="webmill")
@click.option(
    "--root",
    envvar="WEBMILL_ROOT",
    default="./corpus",
    show_default=True,
    help="corpus root: a path or a pyarrow.fs URI (s3://, gs://, hdfs://, file://) [env WEBMILL_ROOT]",
)
@click.option(
    "--ray-address", envvar="RAY_ADDRESS", default=None, help="join this Ray cluster instead of starting an embedded one [env RAY_ADDRESS]"
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file with [root] [crawl] [clean] [dedup] [shards] [train] [run] tables",
)
@click.option("-v", "--verbose", count=True, help="more output (repeat for more)")
@click.option("-q", "--quiet", is_flag=True, help="only results and errors")
@click.pass_context
def cli(click_ctx, root, ray_address, config_path, verbose, quiet):
    """webmill: crawl the web, clean and deduplicate it into Parquet shards,
    and train a language model on them, on Ray."""
    ctx = Context(root_uri=root, ray_address=ray_address or None, config_path=config_path, verbosity=-1 if quiet else verbose)
    _ = ctx.config  # validate the config file before any verb runs
    click_ctx.obj = ctx


def _register_stage_commands() -> None:
    """Each stage adds its own verbs; a verb not built yet says so and exits 2."""
    from webmill import commands

    commands.register(cli)


def main(argv: list[str] | None = None) -> None:
    from webmill.global_options import hoist

    _register_stage_commands()
    try:
        args = hoist(cli, list(sys.argv[1:] if argv is None else argv))
        cli.main(args=args, prog_name="webmill", standalone_mode=False)
    except UserError as e:
        click.echo(printable(f"webmill: error: {e}"), err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("webmill: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if e.exit_code == 1 else e.exit_code)
    except KeyboardInterrupt:
        click.echo("webmill: interrupted", err=True)
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
