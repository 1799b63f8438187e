r"""Full-ranking inference time of saved checkpoints, side by side in one process.

    python -m recbole_distill.benchmark.inference --model_files=saved/PreBERT-....pth,saved/MiniBERT-....pth

For each checkpoint: ``full_sort_predict`` over its test users, per 1,000 users (the fastest of
``--repeats`` passes, as the benchmark measures it), and its trainable parameters. The checkpoints take
turns pass by pass, so a busy machine slows them alike. Prints a markdown table.
"""


from recbole_distill.cli import ArgumentParser, positive_int, run_command
from recbole_distill.benchmark.measure import seconds_per_1000_users, test_batches, trainable_parameters
from recbole_distill.quick_start import load_data_and_model


def compare_inference(model_files, repeats=20):
    """``{model_file: (model name, seconds per 1,000 users, trainable parameters)}``."""
    runs = {}
    for model_file in model_files:
        config, model, _, _, _, test_data = load_data_and_model(model_file)
        runs[model_file] = (config["model"], model.eval(), *test_batches(test_data))
    times = {model_file: [] for model_file in runs}
    for _ in range(repeats + 1):  # the first round warms caches up and is not counted
        for model_file, (_, model, batches, n_users) in runs.items():
            times[model_file].append(seconds_per_1000_users(model, batches, n_users))
    return {
        model_file: (name, min(times[model_file][1:]), trainable_parameters(model))
        for model_file, (name, model, _, _) in runs.items()
    }


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--model_files", required=True, help="comma-separated checkpoints")
    parser.add_argument("--repeats", type=positive_int, default=20)
    args = parser.parse_args()
    results = compare_inference(args.model_files.split(","), args.repeats)
    print("| model | ms per 1,000 users | parameters | checkpoint |\n|---|---|---|---|")
    for file, (name, seconds, parameters) in results.items():
        print(f"| {name} | {seconds * 1000:.1f} | {parameters:,} | {file} |")


if __name__ == "__main__":
    run_command(main)
