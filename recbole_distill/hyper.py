r"""Hyperparameter tuning with RecBole's :class:`~recbole.trainer.HyperTuning`, selecting on validation only.

    python run_hyper_distill.py --model=DLLM2RecGRU4Rec --params_file=properties/hyper/DLLM2Rec.hyper

RecBole's own ``run_hyper.py`` goes through ``recbole.quick_start`` (which imports ray) and tests every
trial; here each trial trains and validates only, so the choice can never lean on the test set. Test the
chosen values once, afterwards, with ``run_recbole_distill.py``.
"""

from functools import partial
from logging import getLogger
from pathlib import Path

from recbole.trainer import HyperTuning

from recbole_distill.errors import ConfigError
from recbole_distill.quick_start import prepare_run

NOT_TESTED = "not evaluated: tuning selects on validation only"


def objective_function(config_dict=None, config_file_list=None, model=None, dataset=None):
    """One trial: train with early stopping on validation and return RecBole's result dict, without test."""
    config, _, train_data, valid_data, _, _, trainer = prepare_run(model, dataset, config_file_list, config_dict)
    best_valid_score, best_valid_result = trainer.fit(train_data, valid_data, verbose=False, saved=False,
                                                      show_progress=config["show_progress"])
    getLogger().info(f"trial {config_dict}: best valid {dict(best_valid_result)}")
    return {
        "model": config["model"],
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": {key: float(value) for key, value in best_valid_result.items()},
        "test_result": NOT_TESTED,
    }


def tune(model, dataset, params_file, config_file_list=None, algo="exhaustive", max_evals=100, early_stop=10):
    """Run the search; return the :class:`HyperTuning` (``best_params``, ``params2result``)."""
    if not Path(params_file).is_file():
        raise ConfigError("params_file", params_file, "a search-space file, one 'key choice [values]' line per key "
                          "(RecBole's format; see properties/hyper/DLLM2Rec.hyper)")
    objective = partial(objective_function, model=model, dataset=dataset)
    hyper = HyperTuning(objective, algo=algo, max_evals=max_evals, early_stop=early_stop, params_file=params_file,
                        fixed_config_file_list=config_file_list)
    hyper.run()
    return hyper


def write_trials(hyper, path):
    """Every trial's values and validation metrics, best first, as a markdown table."""
    trials = sorted(hyper.params2result.items(), key=lambda item: item[1]["best_valid_score"],
                    reverse=next(iter(hyper.params2result.values()))["valid_score_bigger"])
    metrics = list(trials[0][1]["best_valid_result"])
    lines = ["| values | " + " | ".join(f"valid {m}" for m in metrics) + " |", "|---|" + "---|" * len(metrics)]
    for params, result in trials:
        lines.append(f"| {params} | " + " | ".join(f"{result['best_valid_result'][m]:.4f}" for m in metrics) + " |")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
