"""Tune a recbole-distill (or RecBole) model with RecBole's HyperTuning: the flags of RecBole's run_hyper.py.

    python run_hyper_distill.py --model=DLLM2RecGRU4Rec --dataset=ml-100k --params_file=properties/hyper/DLLM2Rec.hyper
    python run_hyper_distill.py --model=DLLM2RecSASRec --params_file=my.hyper --algo=bayes --max_evals=20 --epochs=3

Each trial trains and validates (never tests); the trials, best first, go to --output_file.
Other --key=value flags reach every trial's config, as in RecBole.
"""

from recbole_distill.cli import ArgumentParser, config_files, positive_int, run_command
from recbole_distill.hyper import tune, write_trials
from recbole_distill.paths import PROPERTIES_DIR


def main():
    parser = ArgumentParser()
    parser.add_argument("--model", "-m", type=str, default="DLLM2RecSASRec", help="name of models")
    parser.add_argument("--dataset", "-d", type=str, default="ml-100k", help="name of datasets")
    parser.add_argument("--config_files", type=str, default=None, help="fixed config files")
    parser.add_argument("--params_file", type=str, default=str(PROPERTIES_DIR / "hyper" / "DLLM2Rec.hyper"),
                        help="search space (default: the plugin's properties/hyper/DLLM2Rec.hyper)")
    parser.add_argument("--algo", choices=("exhaustive", "random", "bayes"), default="exhaustive", help="hyperopt's search")
    parser.add_argument("--max_evals", type=positive_int, default=100, help="trials for random / bayes")
    parser.add_argument("--output_file", type=str, default=None, help="default: hyper_<model>.md")
    args, _ = parser.parse_known_args()

    hyper = tune(args.model, args.dataset, args.params_file, config_files(args.config_files), args.algo, args.max_evals)
    output_file = args.output_file or f"hyper_{args.model}.md"
    write_trials(hyper, output_file)
    print(f"best values (validation {hyper.best_score:.4f}): {hyper.params2str(hyper.best_params)}; all trials: {output_file}")


if __name__ == "__main__":
    run_command(main)
