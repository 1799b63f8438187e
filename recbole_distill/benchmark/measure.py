"""One benchmark run: train and test a model as ``run_recbole_distill`` does, measuring what it costs.

Runs in its own process (see :mod:`recbole_distill.benchmark`), so that peak memory and timings belong
to this run alone.
"""

import json
import resource
import statistics
import sys
import time
from logging import getLogger

import torch

from recbole_distill.benchmark.bootstrap import evaluate_per_user
from recbole_distill.cli import run_command
from recbole_distill.quick_start import load_data_and_model, prepare_run


def test_batches(eval_data):
    """The interactions of a full-ranking dataloader, with their number of users."""
    batches = [batch[0] for batch in eval_data]
    return batches, sum(len(batch) for batch in batches)


@torch.no_grad()
def seconds_per_1000_users(model, batches, n_users):
    """One timed pass of ``full_sort_predict`` over ``batches``: the scoring RecBole's full-ranking
    evaluator does, without the metric bookkeeping."""
    start = time.perf_counter()
    for interaction in batches:
        model.full_sort_predict(interaction)
    return (time.perf_counter() - start) / n_users * 1000


def inference_seconds_per_1000_users(model, eval_data, repeats=20):
    """Full-ranking time per 1,000 users of ``eval_data``: the fastest of ``repeats`` passes (after one
    warm-up pass), since noise from a shared machine only ever adds time."""
    model.eval()
    batches, n_users = test_batches(eval_data)
    passes = [seconds_per_1000_users(model, batches, n_users) for _ in range(repeats + 1)]
    return min(passes[1:])


def trainable_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def teacher_costs(model_file):
    """Full-ranking time per 1,000 test users and trainable parameters of a teacher checkpoint (PreBERT or
    any RecBole model); empty when there is none (e.g. rankings imported from elsewhere)."""
    if not model_file:
        return "", ""
    _, model, _, _, _, test_data = load_data_and_model(model_file)
    return inference_seconds_per_1000_users(model, test_data), trainable_parameters(model)


def measure(model, dataset, config_file_list=None, config_dict=None, resume_file=None):
    """Train, select on validation, test, and measure: the result row of one benchmark run.

    With ``resume_file`` the run continues the interrupted one that wrote it; the epochs it trained before
    the interruption count in ``epochs`` and ``seconds_per_epoch``, ``wall_seconds`` is this process's.
    """
    config, _, train_data, valid_data, test_data, net, trainer = prepare_run(
        model, dataset, config_file_list, config_dict, resume_file
    )
    start = time.perf_counter()
    best_valid_score, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=config["show_progress"])
    test_result, users, per_user = evaluate_per_user(trainer, test_data, config["valid_metric"])
    wall = time.perf_counter() - start
    getLogger().info(f"benchmark test result: {dict(test_result)}")
    if config["model"] == "TeacherRanking":
        # a lookup in stored rankings costs nothing; the teacher's cost is its own checkpoint's, if given
        inference, parameters = teacher_costs(config["teacher_model_file"])
    else:
        inference = inference_seconds_per_1000_users(net, test_data)
        parameters = trainable_parameters(net)
    return {
        "model": config["model"],
        "dataset": config["dataset"],
        "seed": config["seed"],
        **{f"test_{key}": float(value) for key, value in test_result.items()},
        f"valid_{config['valid_metric'].lower()}": float(best_valid_score),
        "epochs": len(trainer.train_epoch_seconds),
        "seconds_per_epoch": statistics.median(trainer.train_epoch_seconds),
        "inference_seconds_per_1000_users": inference,
        "parameters": parameters,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_seconds": wall,
        "checkpoint": trainer.saved_model_file,
        "per_user": {"metric": config["valid_metric"].lower(), "users": users.tolist(), "values": per_user.tolist()},
    }


if __name__ == "__main__":
    # python -m recbole_distill.benchmark.measure '<json: model, dataset, config_file_list, config_dict[, resume_file]>'
    spec = json.loads(sys.argv[1])
    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value flags from sys.argv
    run_command(lambda: print("BENCHMARK_RESULT " + json.dumps(measure(**spec)), flush=True))
