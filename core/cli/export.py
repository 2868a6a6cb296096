"""Commands that take a model out of the lab: export (SavedModel, ONNX, LiteRT, Keras, with a model card)
and the run's MLflow model (logged into the run, optionally registered)."""
from __future__ import annotations

import argparse

from core.cli.common import AddParser


def register(add: AddParser) -> None:
    """Add this group's commands to the top-level parser."""
    from core.inference.export import FORMAT_NOTES, FORMATS

    p = add("export", help="export a finished run (model + model card) and/or log it as an MLflow model")
    p.add_argument("run", metavar="RUN", help="run id (or a unique prefix) of a finished, evaluated run")
    p.add_argument("--format", choices=FORMATS, default="onnx",
                   help="; ".join(f"{k}: {v}" for k, v in FORMAT_NOTES.items()))
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder (new or empty) for the model, MODEL_CARD.md and model_card.json")
    p.add_argument("--max-check", type=int, default=None, metavar="N",
                   help="compare the export with the Keras model on the first N test images (default: all)")
    p.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    p.add_argument("--mlflow", action="store_true",
                   help="log the run's MLflow pyfunc model into the run (runs:/RUN/mlflow_model)")
    p.add_argument("--register", default=None, metavar="NAME",
                   help="also register that MLflow model under NAME, with the model card as its description "
                        "(implies --mlflow)")
    p.set_defaults(fn=cmd_export)


def _resolve_run(token: str, store) -> str:
    from core.inference.predictors import list_predictors, match_predictors

    runs = [p for p in list_predictors(store) if p["kind"] == "run"]
    return match_predictors([token], runs)[0]


def cmd_export(args: argparse.Namespace) -> int:
    """Export a run in one format with its card, and/or log (and register) its MLflow model (2: bad input)."""
    from core.configs import ConfigError
    from core.store import RunStore

    if args.out is None and not (args.mlflow or args.register):
        raise ConfigError("export: nothing to do; give --out DIR (with --format) and/or --mlflow [--register NAME]")
    if args.max_check is not None and args.max_check < 1:
        raise ConfigError(f"--max-check: expected a positive number of images. Received: {args.max_check}")
    store = RunStore()
    run_id = _resolve_run(args.run, store)
    if args.out is not None:
        from core.inference.export import export_run

        print(f"exporting run {run_id} as {args.format} into {args.out} …", flush=True)
        result = export_run(run_id, args.format, args.out, store=store, max_check=args.max_check,
                            overwrite=args.overwrite)
        check = result.card["check"]
        print(f"model: {result.model_path}\ncard:  {result.card_md}, {result.card_json}\n"
              f"check: largest absolute probability difference vs the Keras model "
              f"{check['max_abs_prob_diff']:.3g} over {check['images']} test images")
    if args.mlflow or args.register:
        from core.inference.mlflow_model import log_run_model

        logged = log_run_model(run_id, store, register=args.register)
        print(f"MLflow model: {logged.uri} (tracking URI {store.uri})")
        if logged.registered_name:
            print(f"registered: models:/{logged.registered_name}/{logged.version}")
        print(f"serve it: MLFLOW_TRACKING_URI={store.uri} mlflow models serve -m {logged.uri} "
              "--env-manager local -h 127.0.0.1 -p 5001")
    return 0
