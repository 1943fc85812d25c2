"""What every command shares: the parser that exits 2 on bad arguments, argument types, error lines."""

from __future__ import annotations

import argparse
import sys

from speclet_core.errors import DataValidationError, SpecletError

EXIT_BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are ``error: …`` lines and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1 (shared by every command)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def report_error(exc: SpecletError) -> None:
    """``error: …`` lines on stderr: one per problem for a validation error."""
    if isinstance(exc, DataValidationError):
        n = len(exc.problems)
        print(f"error: {exc.source}: {n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
    else:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--biomarker`` and ``--batch`` of ``fit`` (the models that read them: see ``ModelSpec.options``)."""
    parser.add_argument(
        "--biomarker", metavar="COLUMN", default=None,
        help=("with --model gene_biomarker: the column whose true/mutated values mark a cell line: COLUMN "
              "(one value per cell line), COLUMN:GENE (that gene's rows, e.g. is_mutated:KRAS) or COLUMN=VALUE "
              "(e.g. primary_or_metastasis=metastasis)"),
    )
    parser.add_argument(
        "--batch", metavar="COLUMN", default=None,
        help="with gene_biomarker or gene_batch: a shift per value of COLUMN (screen: Broad vs Sanger, or pdna_batch)",
    )


def model_options(args: argparse.Namespace) -> dict[str, str]:
    """The model options given on the command line, for ``prepare_request(options=…)``."""
    return {k: v for k in ("biomarker", "batch") if (v := getattr(args, k, None)) is not None}
