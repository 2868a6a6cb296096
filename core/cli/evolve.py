"""The evolve command: a PyGAD search over training settings (mode hyper) or a head's weights (mode head)."""
from __future__ import annotations

import argparse
import os

from core.cli.common import AddParser, add_run_options, apply_quick, run_settings

# Not exported by core.evolution as constants: the defaults of ``evolution.run_search``.
POPULATION = 8
GENERATIONS = 5


def register(add: AddParser) -> None:
    """Add this group's command to the top-level parser."""
    from core import evolution

    budget = evolution.Budget()
    p = add("evolve", help="genetic search over hyperparameters (or a head's weights) with PyGAD",
            description="--eval-* set each individual's short budget; --epochs, --max-train and "
                        "--max-eval set the final retrain of the best genome, as for compare.")
    p.add_argument("--population", type=int, default=POPULATION)
    p.add_argument("--generations", type=int, default=GENERATIONS)
    p.add_argument("--strategy", choices=evolution.STRATEGIES, default=evolution.STRATEGIES[0],
                   help="random: the same budget spent on random genomes (a baseline for the GA)")
    p.add_argument("--mode", choices=evolution.MODES, default=evolution.MODES[0],
                   help="hyper: evolve training settings; head: evolve a dense head's weights vs Adam/RMSprop")
    p.add_argument("--fix", nargs="*", default=[], metavar="GENE=VALUE",
                   help="pin genes, e.g. arch=vgg16 input_size=48 (genes: "
                        + ", ".join(g.name for g in evolution.GENE_SPACE) + ")")
    p.add_argument("--eval-epochs", type=int, default=budget.epochs, help="epochs per individual (fitness budget)")
    p.add_argument("--eval-max-train", type=int, default=budget.max_train, help="training images per individual")
    p.add_argument("--eval-max-eval", type=int, default=budget.max_eval, help="validation images per individual")
    p.add_argument("--long-epochs", type=int, default=budget.long_epochs,
                   help="multi-fidelity: retrain the best third of each generation for this many epochs")
    p.add_argument("--objectives", default="accuracy",
                   help="accuracy (default), or accuracy and costs to minimise, comma-separated (costs: "
                        + ", ".join(list(evolution.OBJECTIVES)[1:]) + "): a multi-objective NSGA-II search "
                        "that evolves a front, e.g. accuracy,train_time")
    p.add_argument("--retrain-front", type=int, default=None, metavar="K",
                   help="with --resume SEARCH_ID: retrain member K of a multi-objective search's final front "
                        "with the full budget, as variant ga-SEARCH_ID-K")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="run N searches per strategy (GA and random) at the same budget, seeds --seed onwards, as "
                        "NAME-ga-sSEED and NAME-random-sSEED; the Evolve page compares them across seeds")
    p.add_argument("--no-final", action="store_true", help="skip retraining the best genome with the full budget")
    p.add_argument("--name", default="", help="search id (default: generated)")
    p.add_argument("--resume", default="", metavar="SEARCH_ID", help="continue a stopped or killed search")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="train each generation's individuals in parallel as Ray tasks: on a new local Ray instance, "
                        "or on the cluster at ADDRESS ('auto' or HEAD:6379)")
    add_run_options(p)
    p.set_defaults(fn=cmd_evolve)


def base_from_args(args: argparse.Namespace):
    """The base config genes override: the run options, with no configuration applied (genes choose those)."""
    from core.configs import presets

    return presets.shared_base("resnet50", args.dataset, **run_settings(args))


def cmd_evolve(args: argparse.Namespace) -> int:
    """Start (or resume) a search with a progress bar, then print its outcome; 1 unless it finished."""
    import warnings

    from tqdm import tqdm

    from core import cluster, evolution

    if args.ray:  # each generation's new individuals train in parallel as Ray tasks
        os.environ[cluster.ADDRESS_ENV] = args.ray
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")  # fit() on a shuffled tf.data, every individual
    bar = tqdm(desc="evolve", unit="step")

    def progress(p) -> None:
        bar.total, bar.n = p.total, p.done
        bar.set_postfix(generation=p.generation, val="-" if p.best is None else f"{p.best:.3f}", refresh=False)
        bar.refresh()

    try:
        if args.retrain_front is not None:
            if not args.resume:
                raise SystemExit("--retrain-front K needs --resume SEARCH_ID (the search whose front member K to retrain)")
            spec = evolution.SearchSpec.from_payload({"search_id": args.resume, "action": "retrain-front",
                                                      "member": args.retrain_front})  # names a bad member
            search_id = evolution.retrain_front_member(spec.search_id, spec.member, progress=progress)
        elif args.resume:
            search_id = evolution.resume_search(args.resume, progress=progress)
        elif args.seeds is not None:
            return _seeded(args, evolution, progress, bar)
        else:
            apply_quick(args)
            budget = evolution.Budget(epochs=args.eval_epochs, max_train=args.eval_max_train,
                                      max_eval=args.eval_max_eval, long_epochs=args.long_epochs)
            search_id = args.name or evolution.new_search_id(args.strategy, args.mode)
            tqdm.write(f"search {search_id}: resume with `python -m core evolve --resume {search_id}`")
            evolution.run_search(args.dataset, args.population, args.generations, args.strategy, args.mode,
                                 budget=budget, base=base_from_args(args), fixed=evolution.parse_fixed(args.fix),
                                 seed=args.seed, retrain_best=not args.no_final, search_id=search_id,
                                 progress=progress, objectives=tuple(args.objectives.split(",")))
    finally:
        bar.close()
    state = evolution.search_state(search_id)
    print_outcome(search_id, state)
    return 0 if state["status"] == "finished" else 1


def _seeded(args: argparse.Namespace, evolution, progress, bar) -> int:
    """``--seeds N``: N searches per strategy, then each strategy's final best fitness across seeds."""
    apply_quick(args)
    budget = evolution.Budget(epochs=args.eval_epochs, max_train=args.eval_max_train, max_eval=args.eval_max_eval,
                              long_epochs=args.long_epochs)
    name = args.name or evolution.new_search_id("seeds", args.mode)
    bar.write(f"seeded comparison {name}: run the same command with --name {name} to resume it")
    try:
        ids = evolution.run_seeded_searches(
            args.dataset, args.seeds, args.population, args.generations, name=name, first_seed=args.seed,
            progress=progress, mode=args.mode, budget=budget, base=base_from_args(args),
            fixed=evolution.parse_fixed(args.fix), retrain_best=not args.no_final,
            objectives=tuple(args.objectives.split(",")))
    finally:
        bar.close()
    bands = evolution.strategy_bands(ids, "evaluations")
    for strategy, rows in bands.groupby("strategy", sort=False):
        last = rows.iloc[-1]
        print(f"{strategy:6s}: best validation fitness {last['mean']:.3f} (95% t-interval across {last['n']} seeds "
              f"[{last['low']:.3f}, {last['high']:.3f}]) after up to {int(last['evaluations'])} trainings")
    print("searches: " + " ".join(ids))
    return 0 if all(evolution.search_state(s)["status"] == "finished" for s in ids) else 1


def print_outcome(search_id: str, state: dict) -> None:
    """Mode head: each method's validation accuracy from start to end. Mode hyper: cost, best genome, final test."""
    for note in state["notes"]:
        print(f"note: {note}")
    if state["mode"] == "head":
        curves = state["curves"]
        last = curves.sort_values("step").groupby("method").tail(1).set_index("method")
        start = curves[curves.step == 0].groupby("method")["val_accuracy"].first()
        for method, row in last.iterrows():
            print(f"{method:8s} val accuracy {start[method]:.3f} -> {row.val_accuracy:.3f} "
                  f"after {int(row.step)} steps ({int(row.forward_passes)} passes over the training set)")
        return
    cost, best = state["cost"], state["best"]
    print(f"search {search_id}: {state['status']}, {cost['evaluations']} trainings, "
          f"{cost['cache_hits']} cache hits, {cost['seconds']:.0f} s")
    if best:
        print(f"best genome (val accuracy {best['fitness']:.3f}): "
              + ", ".join(f"{k}={v}" for k, v in best["genes"].items()))
    if state["final_test_accuracy"] is not None:
        print(f"ga-{search_id}: test accuracy {state['final_test_accuracy']:.3f} (run {state['final_run_id']})")
    front = state["front"]
    if len(front):
        costs = state["cost_metrics"]
        print(f"final front ({', '.join(state['objectives'])}; validation accuracy), cheapest first:")
        for m in front.itertuples():
            retrained = (f", retrained as ga-{search_id}-{m.member}: test accuracy {m.test_accuracy:.3f}"
                         if m.retrain_status == "FINISHED" else "")
            print(f"  {m.member}: val accuracy {m.fitness:.3f}, "
                  + ", ".join(f"{c} {getattr(m, c):.4g}" for c in costs) + retrained)
        print(f"retrain a member with the full budget: python -m core evolve --resume {search_id} --retrain-front K")
