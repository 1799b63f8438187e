r"""Teacher rankings from a trained checkpoint: the top-K of every train / valid / test sample.

Any RecBole or recbole-distill sequential checkpoint can teach (for example ``LLMEnhancedSASRec`` or a
larger SASRec trained with ``run_recbole_distill.py``). The scores are the model's own next-item scores
(``full_sort_predict``), stored as ``logit``s. With ``teacher_exclude_history`` (on by default for data
without repeated (user, item) pairs) the items each user already had are left out of the top-K. The
checkpoint's own test metrics, measured by RecBole's evaluator, go into teacher.yaml (with history
excluded too, when it is: the metrics ``TeacherRanking`` reproduces from the folder). A model with
``prefix_scores`` (a causal model) ranks the training samples of a whole window in one pass. The
checkpoint's item embeddings (PreBERT: the items' token embeddings) are written too;
``recbole_distill.teacher.text_embedding`` replaces them with item-text embeddings.

    python -m recbole_distill.teacher.export --model_file=saved/SASRec-....pth --teacher_path=dataset/ml-100k/teacher
"""

import argparse
from logging import getLogger

import numpy as np
import torch
from recbole.utils import set_color
from tqdm import tqdm

from recbole_distill.cli import ArgumentParser, command_line, positive_int, run_command
from recbole_distill.data.dataset import TARGET_POS, default_teacher_path
from recbole_distill.data.writer import TeacherWriter
from recbole_distill.model.abstract_recommender import PluginRecommender
from recbole_distill.errors import RecBoleDistillError
from recbole_distill.quick_start import load_data_and_model
from recbole_distill.teacher.ranking import mask_history, resolve_exclude_history
from recbole_distill.utils import get_trainer


def _top(scores, targets, k, dataset, users, positions, exclude_history):
    """Top-``k`` ids and scores of ``scores`` ``[B, n_items]`` (padding, and history if excluded, left out)
    and each row's score of its target."""
    target_scores = scores.gather(1, targets[:, None])[:, 0]
    scores[:, 0] = -np.inf
    if exclude_history:
        mask_history(scores, dataset, users, positions)
    values, indices = scores.topk(k, dim=1)
    return indices.cpu(), values.cpu(), target_scores.cpu()


@torch.no_grad()
def rank_samples(model, dataset, k, batch_size, show_progress=True, desc="Rank", exclude_history=False):
    """Top-``k`` item ids, their scores and the target's score for every sample, one ``full_sort_predict``
    per batch of samples."""
    model.eval()
    feat = dataset.inter_feat
    device = next(model.parameters()).device
    parts = []
    starts = range(0, len(feat), batch_size)
    for start in tqdm(starts, desc=set_color(f"{desc:<11}", "pink"), ncols=100, disable=not show_progress):
        batch = feat[start : start + batch_size]
        scores = model.full_sort_predict(batch.to(device)).view(len(batch), -1)
        users, positions = batch[dataset.uid_field], batch[TARGET_POS]
        parts.append(_top(scores, batch[dataset.iid_field].to(device), k, dataset, users, positions, exclude_history))
    return tuple(torch.cat(column).numpy() for column in zip(*parts))


@torch.no_grad()
def rank_windows(model, dataset, k, batch_size, show_progress=True, desc="Rank", exclude_history=False):
    """What :func:`rank_samples` returns, from one ``prefix_scores`` pass per window of samples.

    Windows end every ``MAX_ITEM_LIST_LENGTH / 2`` targets (counted back from each user's last sample) and
    each ranks the samples of its second half, so every sample is ranked from at least half a window of
    history (from all of it when the user has fewer items), rather than from exactly its last
    ``MAX_ITEM_LIST_LENGTH`` items as ``full_sort_predict`` would. Valid and test samples, where the
    evaluator's own ranking matters, go through :func:`rank_samples`.
    """
    model.eval()
    feat = dataset.inter_feat
    device = next(model.parameters()).device
    length = model.max_seq_length
    stride = max(1, length // 2)
    ends = dataset.training_windows(dataset, stride=stride).inter_feat
    users, positions = feat[dataset.uid_field].numpy(), feat[TARGET_POS].numpy()
    row_of = {key: row for row, key in enumerate(zip(users.tolist(), positions.tolist()))}
    n_items = model.n_items
    topk, scores, target_scores = np.zeros((len(feat), k), np.int64), np.zeros((len(feat), k), np.float32), np.zeros(len(feat), np.float32)
    starts = range(0, len(ends), batch_size)
    for start in tqdm(starts, desc=set_color(f"{desc:<11}", "pink"), ncols=100, disable=not show_progress):
        batch = ends[start : start + batch_size]
        item_seq, lengths = batch[dataset.item_id_list_field], batch[dataset.item_list_length_field]
        end_pos = batch[TARGET_POS]
        # position j of a window ending at target e with history length l ranks the target at e - l + 1 + j
        offsets = torch.arange(item_seq.size(1))[None, :]
        first_kept = torch.where(end_pos > stride, lengths - stride, 0).clamp_min(0)
        kept = (offsets >= first_kept[:, None]) & (offsets < lengths[:, None])
        window_users = batch[dataset.uid_field][:, None].expand_as(item_seq)[kept]
        target_pos = (end_pos - lengths + 1)[:, None] + offsets
        window_scores = model.prefix_scores(item_seq.to(device)).view(*item_seq.shape, n_items)[kept.to(device)]
        targets = torch.cat([item_seq[:, 1:], batch[dataset.iid_field][:, None]], dim=1)
        targets[torch.arange(len(batch)), lengths - 1] = batch[dataset.iid_field]
        part = _top(window_scores, targets[kept].to(device), k, dataset, window_users, target_pos[kept], exclude_history)
        rows = [row_of[key] for key in zip(window_users.tolist(), target_pos[kept].tolist())]
        topk[rows], scores[rows], target_scores[rows] = (column.numpy() for column in part)
    return topk, scores, target_scores


def _optional_bool(text):
    value = {"true": True, "false": False, "~": None, "none": None}.get(text.lower(), text)
    if isinstance(value, str):
        raise argparse.ArgumentTypeError(f"expected True, False or ~, not {text!r}")
    return value


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


def _evaluate(config, model, test_data, show_progress, exclude_history=False):
    """RecBole's test result of ``model``, with or without the users' history items (``eval_exclude_history``)."""
    config["eval_exclude_history"] = exclude_history
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=show_progress)
    return {key: float(value) for key, value in result.items()}


def export_teacher(
    model_file, teacher_path=None, k=20, batch_size=None, show_progress=True, command=None, exclude_history=None
):
    """Write the checkpoint's rankings of every sample into ``teacher_path`` and return its test result.

    ``exclude_history`` (``teacher_exclude_history``; ``None``: the checkpoint's setting, else on for data
    without repeated (user, item) pairs) leaves each user's earlier items out of the stored top-K.
    """
    logger = getLogger()
    if k < 1:
        raise RecBoleDistillError(f"--topk={k}: expected at least 1 candidate per sample.")
    # the model's own data with sample keys, every training prefix
    config, model, dataset, train_data, valid_data, test_data = load_data_and_model(
        model_file, config_update={"train_windows": False}, purpose="teacher export"
    )
    datasets = [loader._dataset for loader in (train_data, valid_data, test_data)]
    teacher_path = teacher_path or default_teacher_path(config["dataset"])
    batch_size = batch_size or config["eval_batch_size"]
    if exclude_history is None:
        exclude_history = config["teacher_exclude_history"]
    exclude_history = resolve_exclude_history(exclude_history, dataset)

    test_result = _evaluate(config, model, test_data, show_progress)
    logger.info(set_color("teacher test result", "yellow") + f": {test_result}")
    info = {"teacher": f"{config['model']} checkpoint {model_file}", "trained_with": trained_with(config)}
    info.update(score_kind="logit", exclude_history=exclude_history, test_result=test_result)
    if exclude_history:
        info["test_result_without_history"] = _evaluate(config, model, test_data, show_progress, exclude_history=True)
        logger.info(set_color("without history items", "yellow") + f": {info['test_result_without_history']}")

    parts = []  # per split, in the order of the writer's sample table: train, valid, test
    for split, (name, split_dataset) in enumerate(zip(("train", "valid", "test"), datasets)):
        causal = isinstance(model, PluginRecommender) and model.prefix_scores is not None
        rank = rank_windows if split == 0 and causal else rank_samples
        parts.append(rank(model, split_dataset, k, batch_size, show_progress, f"Rank {name}", exclude_history=exclude_history))
    topk, scores, target_scores = (np.concatenate(column) for column in zip(*parts))

    writer = TeacherWriter(teacher_path, dataset, datasets)
    info["command"] = command or f"export_teacher({str(model_file)!r}, k={k})"
    writer.write_ranking(topk, scores, target_scores, info)
    embeddings = item_embedding_table(model)
    if embeddings is not None:
        writer.write_item_embeddings(
            embeddings[1:].detach().float().cpu().numpy(),
            {"source": f"{config['model']} checkpoint {model_file} (its item embeddings)", "command": info["command"]},
        )
    logger.info(set_color("Teacher rankings written", "blue") + f": {teacher_path} ({len(topk)} samples, K={k})")
    return test_result


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--model_file", required=True, help="checkpoint saved by RecBole or recbole-distill")
    parser.add_argument("--teacher_path", default=None, help="output folder (default: dataset/<dataset>/teacher)")
    parser.add_argument("--topk", type=positive_int, default=20, help="candidates stored per sample (K)")
    parser.add_argument("--batch_size", type=positive_int, default=None, help="samples per batch (default: eval_batch_size)")
    parser.add_argument(
        "--teacher_exclude_history", type=_optional_bool, default=None,
        help="True / False: leave each user's earlier items out of the top-K (default: on without repeated pairs)",
    )
    args, _ = parser.parse_known_args()
    export_teacher(
        args.model_file, args.teacher_path, args.topk, args.batch_size, command=command_line("recbole_distill.teacher.export"),
        exclude_history=args.teacher_exclude_history,
    )


if __name__ == "__main__":
    run_command(main)
