"""Part 2: the reference at language-model shapes, against torch and tf.nn.

For sparse softmax cross-entropy (``torch.nn.functional.cross_entropy`` with
class indices, ``tf.nn.sparse_softmax_cross_entropy_with_logits``), dense
(``cross_entropy`` with probability targets, ``tf.nn.softmax_cross_entropy_with_logits``)
and sigmoid (``binary_cross_entropy_with_logits``, ``tf.nn.sigmoid_cross_entropy_with_logits``),
on the same float32 logits N(0, 1) of (4096, 32000) and (1024, 128000), per-row
(or per-element) losses, no reduction:

* time: each implementation in its own fresh process, a warm-up call on two
  rows, then ``repeat`` timed calls: median and range;
* peak extra memory: one more fresh process per figure, measured on the
  second of two full calls (TensorFlow frees its input copies lazily, inside
  the next call); the reference by tracemalloc (NumPy reports its allocations
  to it), torch and TensorFlow by the resident-set high-water mark above its
  level before the call (their allocators are invisible to tracemalloc). The
  input's size is the logits' and labels' bytes.

``reference`` is the public call (float64 results, the float64 path where its
bound proves it); ``reference_extended`` is ``extended=True`` (everything in
extended precision, as the suite's checks call it); ``reference_quad`` is the
public call in the working precision of a platform whose long double is plain
float64 (binary128 from numpy-quaddtype: macOS on Apple silicon, Windows; see
reference/core.py). The targets apply to the first: within 2x torch's time,
peak extra memory within 1.5x the input's size.
"""

from __future__ import annotations

from benchmarks.measure import Figure, probe, spread_text, table

SHAPES = ((4096, 32000), (1024, 128000))
QUICK_SHAPES = ((256, 32000), (64, 128000))
LOSSES = ("sparse", "dense", "sigmoid")
IMPLEMENTATIONS = ("reference", "reference_extended", "reference_quad", "torch", "tensorflow")
TIME_TARGET = 2.0
MEMORY_TARGET = 1.5
APIS = {
    "sparse": ("F.cross_entropy(class indices)", "tf.nn.sparse_softmax_cross_entropy_with_logits"),
    "dense": ("F.cross_entropy(probabilities)", "tf.nn.softmax_cross_entropy_with_logits"),
    "sigmoid": ("F.binary_cross_entropy_with_logits", "tf.nn.sigmoid_cross_entropy_with_logits"),
}


def run(repeat: int, quick: bool, log) -> dict:
    rows = []
    for shape in QUICK_SHAPES if quick else SHAPES:
        for loss in LOSSES:
            for name in IMPLEMENTATIONS:
                log(f"  {loss} {shape[0]}x{shape[1]}: {name}, time ({repeat} calls) and memory")
                timing = probe("lm_time", loss=loss, shape=list(shape), implementation=name, repeat=repeat)
                memory = probe("lm_memory", loss=loss, shape=list(shape), implementation=name)
                rows.append({"loss": loss, "shape": list(shape), "implementation": name,
                             "seconds": Figure(timing["seconds"]).as_dict(), "memory": memory})
    for row in rows:
        torch_row = next(r for r in rows if r["loss"] == row["loss"] and r["shape"] == row["shape"]
                         and r["implementation"] == "torch")
        row["time_vs_torch"] = row["seconds"]["median"] / torch_row["seconds"]["median"]
        memory = row["memory"]
        measured = memory["tracemalloc_bytes"] if row["implementation"].startswith("reference") else memory["rss_bytes"]
        row["peak_extra_bytes"] = measured
        row["peak_extra_vs_input"] = measured / memory["input_bytes"]
        if row["implementation"] == "reference":
            row["time_target_met"] = row["time_vs_torch"] <= TIME_TARGET
            row["memory_target_met"] = row["peak_extra_vs_input"] <= MEMORY_TARGET
    return {"repeat": repeat, "time_target": TIME_TARGET, "memory_target": MEMORY_TARGET, "rows": rows,
            "memory_methods": {"reference": "tracemalloc peak above the traced memory before the call",
                               "frameworks": rows[0]["memory"]["rss_method"] if rows else ""}}


def _target_text(row: dict) -> str:
    if row["implementation"] != "reference":
        return ""
    time_text = f"time <= {TIME_TARGET}x: {'met' if row['time_target_met'] else 'not met'}"
    memory_text = f"memory <= {MEMORY_TARGET}x: {'met' if row['memory_target_met'] else 'not met'}"
    return f"{time_text}; {memory_text}"


def render(part: dict) -> str:
    rows = []
    for row in part["rows"]:
        torch_api, tf_api = APIS[row["loss"]]
        name = {"torch": f"torch {torch_api}", "tensorflow": tf_api}.get(row["implementation"], row["implementation"])
        method = "tracemalloc" if row["implementation"].startswith("reference") else "RSS"
        rows.append([row["loss"], f"{row['shape'][0]} x {row['shape'][1]}", name, spread_text(row["seconds"]),
                     f"{row['time_vs_torch']:.2f}x",
                     f"{row['peak_extra_bytes'] / 2 ** 20:.0f} MiB ({method})",
                     f"{row['peak_extra_vs_input']:.2f}x", _target_text(row)])
    headers = ["loss", "logits", "implementation", "time", "vs torch", "peak extra memory", "vs input", "target"]
    return table(headers, rows)
