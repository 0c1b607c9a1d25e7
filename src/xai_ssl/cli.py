"""The ``xai-ssl`` command (``python -m xai_ssl``): ``xai-ssl demo --config config/config.yaml`` serves the live demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per tool."""
    p = argparse.ArgumentParser(prog="xai-ssl", description="Explain self-supervised vision encoders (the workflow runs with snakemake).")
    sub = p.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="serve the live demo in the browser (Gradio, offline, 127.0.0.1 by default)")
    demo.add_argument("--config", default="config/config.yaml", help="the workflow's config (models, methods, image size, demo settings)")
    demo.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    demo.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    demo.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the config's device)")
    demo.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                      help="on a CPU, methods estimated above this ask before running (default: the config's demo.cpu_budget_s)")
    demo.add_argument("--results", default="results", help="the workflow's results folder (prepared models, dataset index)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; returns the exit status."""
    args = parser().parse_args(argv)
    if args.command == "demo":
        from xai_ssl.demo import main as demo_main

        demo_main(args.config, host=args.host, port=args.port, device=args.device, budget_s=args.budget, results=args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
