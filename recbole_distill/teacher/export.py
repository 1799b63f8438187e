r"""Teacher rankings from a trained checkpoint: the top-K of every train / valid / test sample.

Any RecBole or recbole-distill sequential checkpoint can teach (for example a larger SASRec trained with
``run_recbole_distill.py``). The scores are the model's own next-item scores (``full_sort_predict``),
stored as ``logit``s; the checkpoint's own test metrics, measured by RecBole's evaluator, go into
teacher.yaml. The checkpoint's item embeddings (PreBERT: the items' token embeddings) are written too;
``recbole_distill.teacher.text_embedding`` replaces them with item-text embeddings.

    python -m recbole_distill.teacher.export --model_file=saved/SASRec-....pth --teacher_path=dataset/ml-100k/teacher
"""

import argparse
import shlex
import sys
from logging import getLogger

import numpy as np
import torch
from recbole.utils import set_color
from tqdm import tqdm

from recbole_distill.data.artifacts import write_item_embeddings, write_ranking
from recbole_distill.data.dataset import TARGET_POS, TeacherSequentialDataset, default_teacher_path
from recbole_distill.quick_start import load_data_and_model
from recbole_distill.utils import get_trainer


@torch.no_grad()
def rank_samples(model, dataset, k, batch_size, show_progress=True, desc="Rank"):
    """Top-``k`` item ids (padding excluded), their scores and the target's score for every sample."""
    model.eval()
    feat = dataset.inter_feat
    device = next(model.parameters()).device
    topk, scores, target_scores = [], [], []
    starts = range(0, len(feat), batch_size)
    for start in tqdm(starts, desc=set_color(f"{desc:<11}", "pink"), ncols=100, disable=not show_progress):
        batch = feat[start : start + batch_size].to(device)
        batch_scores = model.full_sort_predict(batch).view(len(batch), -1)
        batch_scores[:, 0] = -np.inf
        values, indices = batch_scores.topk(k, dim=1)
        topk.append(indices.cpu())
        scores.append(values.cpu())
        target_scores.append(batch_scores.gather(1, batch[dataset.iid_field][:, None])[:, 0].cpu())
    return torch.cat(topk).numpy(), torch.cat(scores).numpy(), torch.cat(target_scores).numpy()


def trained_with(config):
    """The settings the checkpoint was trained with beyond the defaults: its config files, dict and flags."""
    given = {**config.file_config_dict, **config.variable_config_dict, **config.cmd_config_dict}
    return {key: value if isinstance(value, (bool, int, float, str, list, type(None))) else str(value) for key, value in given.items()}


def item_embedding_table(model):
    """The model's own ``[n_items, d]`` item embeddings (row 0: padding), or None if it has none."""
    if hasattr(model, "item_embeddings"):
        return model.item_embeddings()
    table = getattr(model, "item_embedding", None)
    return None if table is None else table.weight[: model.n_items]


def export_teacher(model_file, teacher_path=None, k=20, batch_size=None, show_progress=True, command=None):
    """Write the checkpoint's rankings of every sample into ``teacher_path`` and return its test result."""
    logger = getLogger()
    # the model's own data, with sample keys (and, for a student, its own teacher joined on)
    config, model, dataset, train_data, valid_data, test_data = load_data_and_model(
        model_file, TeacherSequentialDataset
    )
    datasets = [loader._dataset for loader in (train_data, valid_data, test_data)]
    teacher_path = teacher_path or default_teacher_path(config["dataset"])
    batch_size = batch_size or config["eval_batch_size"]

    test_result = get_trainer(config["MODEL_TYPE"], config["model"])(config, model).evaluate(
        test_data, load_best_model=False, show_progress=show_progress
    )
    test_result = {key: float(value) for key, value in test_result.items()}
    logger.info(set_color("teacher test result", "yellow") + f": {test_result}")

    columns = {"topk": [], "scores": [], "target_scores": [], "samples": []}
    for split, (name, split_dataset) in enumerate(zip(("train", "valid", "test"), datasets)):
        topk, scores, target_scores = rank_samples(model, split_dataset, k, batch_size, show_progress, f"Rank {name}")
        feat = split_dataset.inter_feat
        samples = np.stack(
            [
                feat[dataset.uid_field].numpy() - 1,  # users.txt / items.txt leave out RecBole's [PAD] (id 0)
                feat[TARGET_POS].numpy(),
                feat[dataset.iid_field].numpy() - 1,
                np.full(len(feat), split),
            ],
            axis=1,
        )
        for column, value in zip(columns, (topk - 1, scores, target_scores, samples)):
            columns[column].append(value)
    arrays = {column: np.concatenate(parts) for column, parts in columns.items()}

    dataset_info = dataset.teacher_info(datasets)
    items = dataset.field2id_token[dataset.iid_field][1:]
    write_ranking(
        teacher_path,
        dataset_info,
        items=items,
        users=dataset.field2id_token[dataset.uid_field][1:],
        **arrays,
        info={
            "teacher": f"{config['model']} checkpoint {model_file}",
            "trained_with": trained_with(config),
            "score_kind": "logit",
            "test_result": test_result,
            "command": command or f"export_teacher({str(model_file)!r}, k={k})",
        },
    )
    embeddings = item_embedding_table(model)
    if embeddings is not None:
        write_item_embeddings(
            teacher_path,
            dataset_info,
            items=items,
            embeddings=embeddings[1:].detach().float().cpu().numpy(),
            info={"source": f"{config['model']} checkpoint {model_file} (its item embeddings)"},
        )
    logger.info(set_color("Teacher rankings written", "blue") + f": {teacher_path} ({len(arrays['topk'])} samples, K={k})")
    return test_result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_file", required=True, help="checkpoint saved by RecBole or recbole-distill")
    parser.add_argument("--teacher_path", default=None, help="output folder (default: dataset/<dataset>/teacher)")
    parser.add_argument("--topk", type=int, default=20, help="candidates stored per sample (K)")
    parser.add_argument("--batch_size", type=int, default=None, help="samples per batch (default: eval_batch_size)")
    args, _ = parser.parse_known_args()
    command = "python -m recbole_distill.teacher.export " + shlex.join(sys.argv[1:])
    export_teacher(args.model_file, args.teacher_path, args.topk, args.batch_size, command=command)


if __name__ == "__main__":
    main()
