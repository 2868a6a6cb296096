"""The text the bench prints: its summary tables, the Markdown of core/bench/README.md, and ``bench compare``.

Formatters read only the results as saved in a bench's JSON (and ``stats.compare``'s diff of two),
so a saved run prints the same way as a fresh one.
"""
from __future__ import annotations

from core.bench.stats import NOT_RESOLVED, format_ratio

# NVIDIA DeepLearningExamples, TensorFlow ResNet50 v1.5 training, one A100, AMP + XLA, batch 256:
# the figure a user's ``--gpu`` line is held against.
NVIDIA_A100_RESNET50_IMG_S = 2400


def _fig(f: dict) -> str:
    """``37.0 (35.1–38.2)``: median and interquartile range of the windows."""
    return f"{f['median']:.1f} ({f['iqr'][0]:.1f}–{f['iqr'][1]:.1f})"


def _lever_effect(section: dict, line: dict) -> str:
    """A lever's measured ratio, or why it was not measured."""
    return format_ratio(section["ratios"][line["ratio"]]) if line["ratio"] else line["note"]


def _header(results: dict) -> list[str]:
    env, s, m = results["environment"], results["settings"], results.get("machine", {})
    lines = [f"device: {env['device']} | TF {env['tensorflow']} / Keras {env['keras']} | "
             f"mixed precision {env['mixed_precision']} | XLA {env['xla']} | batch {s['batch_size']}, "
             + (f"{s['steps']} steps per window over {s['images']} images held in memory" if "steps" in s
                else f"{s['images']} images per window")
             + f", {s['windows']} interleaved windows after a warm-up"]
    if m:
        other = "n/a" if m["other_cpu_share"] is None else f"{100 * m['other_cpu_share']:.0f}%"
        lines.append(f"load average before {m['load_before'][0]:.1f}, after {m['load_after'][0]:.1f} "
                     f"({m['cores']} cores); CPU used by other processes during the bench: {other}")
        lines += [f"WARNING: {w}" for w in m["warnings"]]
    lines.append("figures: median (interquartile range) of the windows; ratios: median of per-round ratios "
                 "[95% interval], 'not resolved' when the interval contains 1")
    return lines


def format_table(results: dict) -> str:
    """The human-readable summary printed by the CLI."""
    if "precision_xla" in results:
        return format_gpu_table(results)
    fmt = format_ratio
    lines = _header(results) + [f"matmul ceiling: {_fig(results['figures']['matmul/gflops'])} GFLOP/s", ""]
    lines.append(f"{'model':<13}{'pipeline img/s':>22}{'bare fit':>22}{'notebook':>22}{'augmented':>22}"
                 f"{'% peak':>8}{'1st epoch s':>13}")
    for r in results["training"]:
        f = r["figures"]
        lines.append(f"{r['arch'] + '@' + str(r['size']):<13}{_fig(f['pipeline']):>22}{_fig(f['bare_fit']):>22}"
                     f"{_fig(f['notebook_flow_from_directory']):>22}{_fig(f['pipeline_augmented']):>22}"
                     f"{100 * r['fraction_of_matmul_peak']:>8.0f}{r['first_window_s']:>13.1f}")
    lines.append("")
    for r in results["training"]:
        q = r["ratios"]
        lines.append(f"{r['arch']}@{r['size']}: pipeline vs bare fit {fmt(q['pipeline_vs_bare'])}; "
                     f"vs notebook {fmt(q['pipeline_vs_notebook'])}; augmented vs plain {fmt(q['augmented_vs_pipeline'])}")
    if "levers" in results:
        lv = results["levers"]
        lines += ["", f"CPU levers on {lv['arch']}@{lv['size']} (img/s ratio against the default; >1 helps):"]
        for line in lv["levers"]:
            lines.append(f"  {line['lever']:<38}{line['setting']:<42}{_lever_effect(lv, line)}")
    for f in results.get("frozen_features", []):
        lines += ["", f"frozen backbone ({f['arch']}@{f['size']}, {f['frozen_blocks']} blocks frozen, no augmentation): "
                      f"full forward {_fig(f['figures']['full_forward'])} img/s, cached features "
                      f"{_fig(f['figures']['cached_features'])} img/s",
                  f"  steady epoch speed-up {fmt(f['ratios']['cached_vs_full'])}; expected from FLOPs "
                  f"x{f['expected_speedup_flops']:.2f} (trainable part {100 * f['trainable_flop_share']:.0f}% of the "
                  f"forward FLOPs); feature extraction {f['feature_extraction_s']:.1f} s once per run; "
                  f"over 10 epochs x{f['speedup_over_10_epochs']:.2f} (computed from these parts)",
                  f"  achieved GFLOP/s: full path {f['achieved_gflops']['full_forward']:.1f}, cached path "
                  f"{f['achieved_gflops']['cached_features']:.1f}",
                  f"  cached path with 16 steps per call vs 1 (per-step dispatch): "
                  f"{fmt(f['ratios']['dispatch_16_vs_1_steps_per_call'])}"]
    for s in results.get("startup", []):
        lines += ["", f"start-up to the first trained batch, {s['arch']}@{s['size']} (fresh process"
                      f"{'' if s['optimizer_prebuilt'] else ', optimizer and metrics NOT pre-built'}): "
                      f"{s['to_first_step_s']:.1f} s = import TensorFlow {s['import_tensorflow_s']:.1f} s + project "
                      f"{s['import_project_s']:.1f} s + build/compile {s['build_compile_s']:.1f} s + first step "
                      f"{s['first_step_s']:.1f} s (of which tracing ~{s['tracing_s']:.1f} s; a steady step "
                      f"{s['steady_step_s']:.2f} s)"]
    d = results["dataset_cache"]
    lines += ["", f"synthetic dataset: first load {d['first_load_s']:.2f} s, held in memory "
                  f"{d['cached_load_s'] * 1000:.1f} ms"]
    for p in results.get("predict_latency", []):
        lines.append(f"prediction per face, {p['arch']}@{p['size']}: detection {p['detection_ms']:.0f} ms, "
                     f"preprocessing {p['preprocess_ms']:.1f} ms, model {p['predict_ms']:.1f} ms")
    for e in results.get("export_latency", []):
        lines.append(f"per face, {e['arch']}@{e['size']}: Keras {e['keras_ms']:.1f} ms, ONNX Runtime {e['onnx_ms']:.1f} ms "
                     f"(Keras/ONNX x{e['keras_over_onnx']:.2f}; outputs differ by at most {e['max_abs_prob_diff']:.1g}; "
                     f"export {e['export_s']:.0f} s)")
    for r in results.get("detection", {}).get("rows", []):
        lines.append(f"Haar detection, {r['megapixels']:.2f} MP {r['photo']}: full resolution {r['before_ms']:.0f} ms "
                     f"({r['faces_before']} face(s)), ~1 MP working copy {r['after_ms']:.0f} ms ({r['faces_after']})")
    if v := results.get("video"):
        lines.append(f"video, {v['frame_size']} frames with one face, {v['arch']}@{v['size']}: {v['ms_per_frame']:.0f} ms "
                     f"per sampled frame ({v['frames_per_s']:.1f} frames/s: decode, detect, track, score)")
    return "\n".join(lines)


def format_gpu_table(results: dict) -> str:
    """The ``--gpu`` summary: img/s per precision x XLA, and each against float32 without XLA."""
    fmt = format_ratio
    lines = _header(results) + [""]
    for r in results["precision_xla"]:
        f, q = r["figures"], r["ratios"]
        lines.append(f"{r['arch']}@{r['size']} batch {r['batch_size']} ({r['mixed_policy']}): "
                     + ", ".join(f"{k} {_fig(v)} img/s" for k, v in f.items()))
        lines.append("  vs fp32: " + "; ".join(f"{k} {fmt(v)}" for k, v in q.items()))
        if (r["arch"], r["size"]) == ("resnet50", 224):
            lines.append(f"  amp_xla is {100 * f['amp_xla']['median'] / NVIDIA_A100_RESNET50_IMG_S:.0f}% of NVIDIA's "
                         f"published ~{NVIDIA_A100_RESNET50_IMG_S:,} img/s on one A100 (ResNet50 v1.5, AMP+XLA, 224 px)")
    return "\n".join(lines)


def format_markdown(results: dict) -> str:
    """core/bench/README.md's tables, generated from a bench JSON (``python -m core bench --markdown``)."""
    fmt = format_ratio
    env, s, m = results["environment"], results["settings"], results.get("machine", {})
    other = "n/a" if m.get("other_cpu_share") is None else f"{100 * m['other_cpu_share']:.0f}%"
    lines = [f"Measured with `{results.get('command') or 'python -m core bench'}` on {env['device']} "
             f"({m.get('cores', '?')} cores, load average {m.get('load_before', ['?'])[0]} before, "
             f"{m.get('load_after', ['?'])[0]} after; other processes "
             f"{other} of the CPU); "
             f"TF {env['tensorflow']}, Keras {env['keras']}, batch {s['batch_size']}, {s['images']} images per "
             f"window, {s['windows']} windows. Figures: median (interquartile range); ratios: median "
             f"[95% distribution-free interval].", ""]
    if "precision_xla" in results:
        lines += ["| model | variant | img/s | vs fp32 |", "|---|---|---|---|"]
        for r in results["precision_xla"]:
            for k, v in r["figures"].items():
                ratio = fmt(r["ratios"][k]) if k in r["ratios"] else "1"
                lines.append(f"| {r['arch']}@{r['size']} | {k} | {_fig(v)} | {ratio} |")
        return "\n".join(lines)
    lines += [f"Matmul ceiling: {_fig(results['figures']['matmul/gflops'])} GFLOP/s.", "",
              "| model | pipeline img/s | bare fit | notebook | augmented | pipeline vs bare | vs notebook "
              "| % of matmul ceiling | 1st epoch s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results["training"]:
        f, q = r["figures"], r["ratios"]
        lines.append(f"| {r['arch']}@{r['size']} | {_fig(f['pipeline'])} | {_fig(f['bare_fit'])} "
                     f"| {_fig(f['notebook_flow_from_directory'])} | {_fig(f['pipeline_augmented'])} "
                     f"| {fmt(q['pipeline_vs_bare'])} | {fmt(q['pipeline_vs_notebook'])} "
                     f"| {100 * r['fraction_of_matmul_peak']:.0f}% | {r['first_window_s']:.1f} |")
    if "levers" in results:
        lv = results["levers"]
        lines += ["", f"| lever ({lv['arch']}@{lv['size']}) | setting | effect on img/s |", "|---|---|---|"]
        for line in lv["levers"]:
            lines.append(f"| {line['lever']} | {line['setting']} | {_lever_effect(lv, line)} |")
    if results.get("frozen_features"):
        lines += ["", "| frozen backbone | full forward img/s | cached img/s | measured speed-up | expected (FLOPs) "
                      "| GFLOP/s full / cached | extraction s | over 10 epochs | 16 vs 1 steps per call |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for f in results["frozen_features"]:
            lines.append(f"| {f['arch']}@{f['size']} | {_fig(f['figures']['full_forward'])} "
                         f"| {_fig(f['figures']['cached_features'])} | {fmt(f['ratios']['cached_vs_full'])} "
                         f"| x{f['expected_speedup_flops']:.2f} | {f['achieved_gflops']['full_forward']:.1f} / "
                         f"{f['achieved_gflops']['cached_features']:.1f} | {f['feature_extraction_s']:.1f} "
                         f"| x{f['speedup_over_10_epochs']:.2f} | {fmt(f['ratios']['dispatch_16_vs_1_steps_per_call'])} |")
    if results.get("startup"):
        lines += ["", "| start-up (fresh process, one sample) | import TF | import project | build+compile | first step "
                      "(tracing) | to first step |", "|---|---|---|---|---|---|"]
        for st in results["startup"]:
            label = f"{st['arch']}@{st['size']}" + ("" if st["optimizer_prebuilt"] else ", train state not pre-built")
            lines.append(f"| {label} | {st['import_tensorflow_s']:.1f} s "
                         f"| {st['import_project_s']:.1f} s | {st['build_compile_s']:.1f} s "
                         f"| {st['first_step_s']:.1f} s ({st['tracing_s']:.1f} s) | {st['to_first_step_s']:.1f} s |")
    return "\n".join(lines)


def format_paper_table(results: dict) -> str:
    """The paper profile's throughput and the FER2013 run time it implies, one line per model."""
    env = results["environment"]
    lines = [f"device: {env['device']} | TF {env['tensorflow']} | load {env['load_average_1min']:.1f} | "
             f"{results['settings']['images']} images, {results['settings']['epochs']} epochs (first = warm-up)",
             f"{'model':<16}{'weights':>11}{'batch':>7}{'train img/s':>13}{'eval img/s':>12}{'GFLOP/img':>11}"
             f"{'FER2013 epoch':>15}{'run (max epochs)':>18}"]
    for r in results["paper"]:
        lines.append(f"{r['arch'] + '@' + str(r['size']):<16}{r['weights']:>11}{r['batch_size']:>7}"
                     f"{r['train_images_per_sec']:>13.1f}{r['eval_images_per_sec']:>12.1f}"
                     f"{r['train_gflop_per_image']:>11.2f}{_hours(r['fer2013_epoch_s']):>15}"
                     f"{_hours(r['fer2013_run_s_at_max_epochs']):>18}")
    lines.append("Run time is an estimate: FER2013's 28,709 training and 3,589 validation images per epoch at the "
                 "measured rates, for the profile's maximum epochs (early stopping usually ends sooner), plus the "
                 "test split scored plain and with each TTA view.")
    return "\n".join(lines)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def format_compare(diff: dict) -> str:
    """The text ``python -m core bench compare`` prints."""
    w = max([len(f["figure"]) for f in diff["figures"]] + [len(r["ratio"]) for r in diff["ratios"]] + [10]) + 2
    lines = [f"{'figure':<{w}}{'old':>10}{'new':>10}  new/old [95% interval]"]
    for f in diff["figures"]:
        c = f["change"]
        lines.append(f"{f['figure']:<{w}}{f['old']:>10.2f}{f['new']:>10.2f}  {format_ratio(c)}"
                     + (f" {c['verdict']}" if c["verdict"] != NOT_RESOLVED and c.get("ci") else ""))
    if diff["ratios"]:
        lines += ["", f"{'ratio':<{w}}{'old':>44}  {'new':>44}"]
        for r in diff["ratios"]:
            flag = ""
            if r["verdict_changed"]:
                flag = "  verdict changed"
                if r.get("change") is not None:
                    flag += f"; the ratio itself: x{format_ratio(r['change'])}"
            lines.append(f"{r['ratio']:<{w}}{format_ratio(r['old']):>44}  {format_ratio(r['new']):>44}{flag}")
    for label, keys in (("only in OLD", diff["only_old"]), ("only in NEW", diff["only_new"])):
        if keys:
            lines.append(f"{label}: {', '.join(keys)}")
    return "\n".join(lines)
