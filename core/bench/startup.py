"""Time to a job's first trained batch, by phase, in a fresh interpreter.

``python -m core.bench.startup ARCH SIZE [BATCH] [--no-prebuild]``; ``--no-prebuild`` leaves
the optimizer and metric variables to be created inside the first traced step, as Keras does
without ``models.build_train_state``.

Prints one JSON object. Run as its own process because every job process pays these
costs from nothing (imports are cached per process), and only standard-library modules
are imported before the clock starts.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace


def measure(arch: str, size: int, batch_size: int = 32, prebuild: bool = True) -> dict:
    """Seconds spent in imports, model build + compile, the first train step (tracing) and a second step."""
    phases: dict[str, float] = {}
    t = time.perf_counter()
    import tensorflow as tf  # noqa: F401  timed on its own: most of the import cost

    phases["import_tensorflow_s"] = time.perf_counter() - t
    t = time.perf_counter()
    from core.configs import presets
    from core.data import (
        datasets,  # noqa: F401  what a job process imports
        synthetic,
    )
    from core.data.pipeline import make_pipeline
    from core.train import models

    phases["import_project_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cfg = presets.preset("scratch-adam", presets.base_config(arch, "bench", batch_size=batch_size))
    model = models.build_model(replace(cfg.model, input_size=size), 7, seed=0)
    model.compile(optimizer=models.make_optimizer(cfg.optimizer), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    if prebuild:
        models.build_train_state(model)
    phases["build_compile_s"] = time.perf_counter() - t
    x, y = synthetic.generate(max(1, batch_size // 7 + 1), seed=0)
    data = make_pipeline(x[:batch_size], y[:batch_size], arch=arch, input_size=size, num_classes=7,
                         batch_size=batch_size, training=True, augment=False)
    t = time.perf_counter()
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    phases["first_step_s"] = time.perf_counter() - t
    t = time.perf_counter()
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    phases["steady_step_s"] = time.perf_counter() - t
    # The first step's excess over a steady one is tracing and graph optimisation.
    phases["tracing_s"] = max(0.0, phases["first_step_s"] - phases["steady_step_s"])
    phases["to_first_step_s"] = (phases["import_tensorflow_s"] + phases["import_project_s"]
                                 + phases["build_compile_s"] + phases["first_step_s"])
    return {"arch": arch, "size": size, "batch_size": batch_size, "optimizer_prebuilt": prebuild, **phases}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--no-prebuild"]
    print(json.dumps(measure(args[0], int(args[1]), int(args[2]) if len(args) > 2 else 32,
                             prebuild="--no-prebuild" not in sys.argv)))
