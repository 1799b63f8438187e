r"""A generative LLM teacher in the style of BIGRec, DLLM2Rec's own teacher.

For every sample a local causal LM reads the titles of the most recent history items (``llm_prompt``)
and writes the next item's title; the text is embedded and grounded to the nearest real items by L2
distance (BIGRec's second step). The top-K grounded items and their distances are the teacher's rankings
(``score_kind: distance``, which the confidence weight reads); the item embeddings used for grounding are
the teacher's item embeddings for embedding distillation. Embeddings come from the LM itself (the last
layer's hidden state of the text's last token, as BIGRec) or from the sentence encoder
(``grounding_embedding``).

Generation is the cost: one LM decode per sample. It runs in batches of ``llm_batch_size`` prompts, with a
progress bar and ETA, on a GPU when there is one, and is resumable: each finished batch is written to
``<teacher_path>/generation/`` at once and never rewritten, and a rerun with the same settings generates
only the batches that are missing. ``--max_samples`` generates only the first samples (train, then valid,
then test), for a throughput and hit-rate probe on a CPU.

    python -m recbole_distill.teacher.generative --dataset=ml-100k --teacher_path=llm_teacher --max_samples=256
"""

import json
import time
from logging import getLogger
from pathlib import Path

import numpy as np
import torch
import yaml
from recbole.utils import init_logger, set_color
from tqdm import tqdm

from recbole_distill.cli import ArgumentParser, command_line, config_files, positive_int, run_command
from recbole_distill.config import Config
from recbole_distill.data.artifacts import SPLITS, atomic_write
from recbole_distill.data.dataset import KeyedSequentialDataset, default_teacher_path
from recbole_distill.data.writer import TeacherWriter
from recbole_distill.data.item_text import read_item_text
from recbole_distill.errors import ConfigError, RecBoleDistillError
from recbole_distill.model.checks import check_choice, check_whole
from recbole_distill.model.plm import DEFAULT_LLM, DEFAULT_PLM, default_llm_path, load_causal_lm
from recbole_distill.paths import PROPERTIES_DIR
from recbole_distill.teacher.ranking import mask_history, resolve_exclude_history

DEFAULTS_FILE = PROPERTIES_DIR / "teacher" / "generative.yaml"
FINETUNE_RECORD = "finetune.yaml"  # written into a fine-tuned LM's folder by recbole_distill.teacher.finetune
# what a finished batch depends on: a rerun with other values must not reuse it
GENERATION_KEYS = ("llm_prompt", "llm_chat_template", "llm_response_prefix", "llm_item_template", "llm_articles_first",
                   "llm_history_length", "llm_max_new_tokens", "llm_num_beams", "llm_batch_size")


def generative_config(dataset, config_files=None, config_dict=None):
    """RecBole's Config for ``dataset`` with the generative teacher's defaults under the dataset's own."""
    config = Config(model="SASRec", dataset=dataset, config_file_list=config_files, config_dict=config_dict)
    with open(DEFAULTS_FILE, encoding="utf-8") as f:
        for key, value in yaml.safe_load(f).items():
            if config.final_config_dict.get(key) is None:
                config[key] = value
    if config["llm_item_template"] is None:
        config["llm_item_template"] = config["item_text_template"]
    for key in ("llm_history_length", "llm_max_new_tokens", "llm_num_beams", "llm_batch_size"):
        check_whole(config, key, low=1)
    check_choice(config, "grounding_embedding", ("llm", "sentence"))
    check_choice(config, "llm_articles_first", (True, False))
    if not isinstance(config["llm_prompt"], str) or "{history}" not in config["llm_prompt"]:
        raise ConfigError("llm_prompt", config["llm_prompt"], "a text with the placeholder {history}")
    return config


class GenerationStore:
    """``<folder>/batch_<b>.json`` per finished batch, written atomically, never rewritten.

    ``settings.yaml`` records what the batches depend on; a folder made with other settings is refused.
    """

    def __init__(self, folder, settings):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        file = self.folder / "settings.yaml"
        if file.is_file():
            with open(file, encoding="utf-8") as f:
                stored = yaml.safe_load(f)
            differ = [key for key in settings if stored.get(key) != settings[key]]
            if differ:
                raise RecBoleDistillError(
                    f"'{self.folder}' holds generations made with other settings ("
                    + "; ".join(f"{key}: {stored.get(key)!r} there, {settings[key]!r} now" for key in differ)
                    + "). Use another teacher_path, or the same settings to resume, or delete the folder."
                )
        else:
            atomic_write(file, lambda f: f.write(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True).encode()))

    def _file(self, batch):
        return self.folder / f"batch_{batch:06d}.json"

    def done(self, batch):
        return self._file(batch).is_file()

    def save(self, batch, texts):
        atomic_write(self._file(batch), lambda f: f.write(json.dumps(texts, ensure_ascii=False).encode("utf-8")))

    def load(self, batch):
        with open(self._file(batch), encoding="utf-8") as f:
            return json.load(f)


class GenerativeTeacher:
    """A local causal LM that writes next-item titles and embeds texts for grounding."""

    def __init__(self, config, llm=None):
        self.config = config
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        path = config["llm_path"] or default_llm_path()
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.tokenizer, self.model = llm if llm is not None else load_causal_lm(path, dtype=dtype)
        self.model.to(self.device)
        self.name = str(config["llm_path"]) if config["llm_path"] else DEFAULT_LLM

    def prompt(self, titles):
        text = self.config["llm_prompt"].format(history="\n".join(titles))
        if self.config["llm_chat_template"]:
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        return text + (self.config["llm_response_prefix"] or "")

    @torch.no_grad()
    def generate(self, prompts):
        """The raw continuation of each prompt (greedy, or beam search with ``llm_num_beams``)."""
        tokens = self.tokenizer(prompts, return_tensors="pt", padding=True,
                                add_special_tokens=not self.config["llm_chat_template"]).to(self.device)
        output = self.model.generate(
            **tokens, max_new_tokens=self.config["llm_max_new_tokens"], num_beams=self.config["llm_num_beams"],
            do_sample=False, pad_token_id=self.tokenizer.pad_token_id,
        )
        return self.tokenizer.batch_decode(output[:, tokens["input_ids"].shape[1]:], skip_special_tokens=True)

    def answer(self, raw):
        """The title in a raw continuation: up to ``llm_answer_stop`` and the first line break."""
        text = raw.split("\n")[0]
        stop = self.config["llm_answer_stop"]
        return (text.split(stop)[0] if stop else text).strip()

    @torch.no_grad()
    def embed(self, texts, batch_size=64, show_progress=True):
        """``[len(texts), d]`` embeddings: the LM's last hidden state at the last token, or the sentence encoder's."""
        if self.config["grounding_embedding"] == "sentence":
            from recbole_distill.teacher.text_embedding import encode_texts

            return torch.from_numpy(encode_texts(texts, self.config["grounding_encoder_path"], batch_size, show_progress=show_progress))
        parts = []
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc=set_color("Embed texts", "pink"), ncols=100, disable=not show_progress):
            tokens = self.tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True).to(self.device)
            hidden = self.model.base_model(**tokens).last_hidden_state  # left padding: the last token is at -1
            parts.append(hidden[:, -1].float().cpu())
        return torch.cat(parts)


def _ground(answer_embeddings, item_embeddings, answer_of, targets, k, history=None, chunk=4096):
    """Top-``k`` items nearest each sample's answer (L2), their distances and the target's distance.

    ``answer_of`` maps samples to answer texts; items and ``targets`` are indices into ``item_embeddings``
    (RecBole id - 1). ``history`` (``(dataset, users, positions)``) leaves each sample's earlier items out.
    Distances are computed ``chunk`` samples at a time, so memory stays at ``chunk x n_items``.
    """
    indices, values, target_distances = [], [], []
    answer_of, targets = torch.from_numpy(answer_of), torch.from_numpy(targets)
    for start in range(0, len(answer_of), chunk):
        rows = slice(start, start + chunk)
        distances = torch.cdist(answer_embeddings[answer_of[rows]], item_embeddings)
        target_distances.append(distances.gather(1, targets[rows, None])[:, 0])
        if history is not None:
            dataset, users, positions = history
            padded = torch.cat([torch.full_like(distances[:, :1], float("inf")), distances], dim=1)  # RecBole ids
            distances = mask_history(padded, dataset, users[rows], positions[rows], fill=float("inf"))[:, 1:]
        nearest = distances.topk(k, dim=1, largest=False)
        indices.append(nearest.indices)
        values.append(nearest.values)
    return torch.cat(indices).numpy(), torch.cat(values).numpy(), torch.cat(target_distances).numpy()


class SampleTexts:
    """Every sample of ``datasets`` (train, valid, test) as the prompts read it: the dataset's item texts
    (``llm_item_template``), each sample's history, target and split, in the order of the teacher folder's rows."""

    def __init__(self, config, dataset, datasets):
        items = list(dataset.field2id_token[dataset.iid_field][1:])
        wording = read_item_text(config, items, config["llm_item_template"], config["llm_articles_first"])
        self.item_text = np.array(wording, dtype=object)
        feats = [d.inter_feat for d in datasets]
        self.histories = np.concatenate([f[dataset.item_id_list_field].numpy() for f in feats])
        self.lengths = np.concatenate([f[dataset.item_list_length_field].numpy() for f in feats])
        self.targets = np.concatenate([f[dataset.iid_field].numpy() for f in feats])
        self.split = np.concatenate([np.full(len(f), s) for s, f in enumerate(feats)])
        self.history_length = config["llm_history_length"]

    def history_titles(self, row):
        """The texts of the sample's last ``llm_history_length`` history items, oldest first."""
        end = self.lengths[row]
        return self.item_text[self.histories[row, max(0, end - self.history_length) : end] - 1]

    def target_title(self, row):
        return self.item_text[self.targets[row] - 1]


def build_generative_teacher(config, teacher_path=None, k=20, max_samples=None, llm=None, show_progress=True,
                             command=None, split=None):
    """Generate, ground and write the teacher for ``config``'s samples; return what was measured.

    ``split`` (``"valid"`` or ``"test"``) and ``max_samples`` restrict it to that split's samples, or to the first
    ones: a probe of what the LM knows (the folder is then no teacher a student can learn from).
    """
    logger = getLogger()
    dataset = KeyedSequentialDataset(config)
    datasets = dataset.build()
    teacher_path = Path(teacher_path or default_teacher_path(config["dataset"]))
    texts = SampleTexts(config, dataset, datasets)
    if split is not None and split not in SPLITS:
        raise ConfigError("split", split, "one of " + ", ".join(SPLITS))
    selected = np.arange(len(texts.targets)) if split is None else np.flatnonzero(texts.split == SPLITS.index(split))
    selected = selected[:max_samples]
    n = len(selected)
    if k > len(texts.item_text):
        raise ConfigError("topk", k, f"at most the {len(texts.item_text)} items of the dataset")

    teacher = GenerativeTeacher(config, llm)
    writer = TeacherWriter(teacher_path, dataset, datasets)
    settings = {"llm": teacher.name, "dataset": config["dataset"], "fingerprint": writer.dataset_info["fingerprint"],
                **{key: config[key] for key in GENERATION_KEYS}, **({"split": split} if split else {})}
    store = GenerationStore(teacher_path / "generation", settings)
    batch_size = config["llm_batch_size"]
    n_batches = -(-n // batch_size)
    todo = [b for b in range(n_batches) if not store.done(b)]
    logger.info(set_color("generative teacher", "blue") + f": {teacher.name} on {teacher.device}, {n} samples in "
                f"{n_batches} batches, {n_batches - len(todo)} already done")

    start = time.time()
    progress = tqdm(todo, desc=set_color("Generate", "pink"), ncols=100, disable=not show_progress,
                    total=n_batches, initial=n_batches - len(todo), unit="batch")
    for b in progress:
        rows = selected[b * batch_size : (b + 1) * batch_size]
        store.save(b, teacher.generate([teacher.prompt(texts.history_titles(r)) for r in rows]))
    seconds = time.time() - start
    generated = sum(len(selected[b * batch_size : (b + 1) * batch_size]) for b in todo)

    raw = [text for b in range(n_batches) for text in store.load(b)][:n]
    answers = [teacher.answer(text) or "?" for text in raw]
    unique, answer_of = np.unique(np.array(answers, dtype=object), return_inverse=True)
    item_embeddings = teacher.embed(list(texts.item_text), show_progress=show_progress)
    table = writer.table
    exclude_history = resolve_exclude_history(config["teacher_exclude_history"], dataset)
    history = (dataset, table["user"][selected], table["pos"][selected]) if exclude_history else None
    targets = texts.targets[selected]
    topk, distances, target_distances = _ground(
        teacher.embed(list(unique), show_progress=show_progress), item_embeddings, answer_of, targets - 1, k, history
    )
    report = _report(topk, targets - 1, texts.split[selected], texts.histories[selected], texts.lengths[selected],
                     generated, seconds)
    report["exact_title"] = round(float(np.mean([_same_title(a, texts.target_title(r)) for a, r in zip(answers, selected)])), 4)
    report["chance_in_top10"] = round(float(np.mean(_chance(dataset, table, selected, exclude_history, min(10, k)))), 4)
    report["examples"] = [{"history_end": str(texts.history_titles(r)[-1]), "answer": answers[i],
                           "grounded": str(texts.item_text[topk[i, 0]]), "target": str(texts.target_title(r))}
                          for i, r in enumerate(selected[:3])]
    logger.info(set_color("generative teacher", "blue") + f": {report}")

    info = {"command": command or "build_generative_teacher(...)"}
    embedding_source = (f"{teacher.name}: last-layer hidden state of the item text's last token"
                        if config["grounding_embedding"] == "llm" else (config["grounding_encoder_path"] or DEFAULT_PLM))
    finetuned = finetune_record(config["llm_path"])
    writer.write_ranking(
        topk + 1, distances, target_distances, rows=selected,  # grounded indices are RecBole ids - 1
        info={"teacher": f"generative LLM {teacher.name}", "score_kind": "distance", "exclude_history": exclude_history,
              "grounding": f"L2 distance between embeddings ({embedding_source})", "generation": settings,
              **({"llm_finetune": finetuned} if finetuned else {}), "measured": report, **info},
    )
    writer.write_item_embeddings(item_embeddings.numpy(),
                                 {"source": embedding_source, "text_template": config["llm_item_template"], **info})
    if n < int((texts.split == 0).sum()):
        logger.warning(f"the teacher at {teacher_path} covers {n} of {len(texts.targets)} samples; a student needs every "
                       "training sample: run without --max_samples or --split (generation resumes where it stopped).")
    return report


def _same_title(answer, title):
    """Whether the LM's answer names the item exactly (case and spacing aside)."""
    return " ".join(answer.lower().split()) == " ".join(str(title).lower().split())


def _chance(dataset, table, rows, exclude_history, k):
    """Each sample's chance that ``k`` items drawn at random hold its target: ``k`` over the items it may be
    (every item, or those outside its history)."""
    candidates = np.full(len(rows), dataset.item_num - 1, dtype=np.float64)
    if exclude_history:
        history_rows, items = dataset.history_index(table["user"][rows], table["pos"][rows])
        distinct = np.unique(history_rows.numpy() * dataset.item_num + items.numpy())  # (row, item) pairs
        candidates -= np.bincount(distinct // dataset.item_num, minlength=len(rows))
    return k / candidates


def finetune_record(llm_path):
    """How the LM at ``llm_path`` was fine-tuned (its ``finetune.yaml``, written by
    :mod:`recbole_distill.teacher.finetune`), or None for an LM used as it came."""
    file = Path(llm_path) / FINETUNE_RECORD if llm_path and Path(llm_path).is_dir() else None
    if file is None or not file.is_file():
        return None
    with open(file, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _report(topk, targets, split, histories, lengths, generated, seconds):
    """Hit rates of the grounded answers, and the generation speed of this run."""
    top1 = topk[:, 0] == targets
    in_history = ((histories == topk[:, :1] + 1) & (np.arange(histories.shape[1]) < lengths[:, None])).any(axis=1)
    report = {
        "samples": len(targets),
        "grounded_to_next_item": round(float(top1.mean()), 4),
        "next_item_in_top10": round(float((topk[:, :10] == targets[:, None]).any(axis=1).mean()), 4),
        "grounded_to_a_history_item": round(float(in_history.mean()), 4),
        "per_split_grounded_to_next_item": {name: round(float(top1[split == s].mean()), 4)
                                            for s, name in enumerate(("train", "valid", "test")) if (split == s).any()},
    }
    if generated:
        report.update(generated_now=int(generated), samples_per_second=round(generated / seconds, 3))
    return report


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--dataset", "-d", default="ml-100k", help="name of datasets")
    parser.add_argument("--config_files", default=None, help="config files shaping the dataset and the llm_* keys")
    parser.add_argument("--teacher_path", default=None, help="output folder (default: dataset/<dataset>/teacher)")
    parser.add_argument("--topk", type=positive_int, default=20, help="grounded candidates stored per sample (K)")
    parser.add_argument("--max_samples", type=positive_int, default=None, help="generate only the first N samples (a probe)")
    parser.add_argument("--split", choices=SPLITS, default=None, help="generate only this split's samples (a probe)")
    args, _ = parser.parse_known_args()
    config = generative_config(args.dataset, config_files(args.config_files))
    init_logger(config)
    build_generative_teacher(config, args.teacher_path, args.topk, args.max_samples, show_progress=config["show_progress"],
                             command=command_line("recbole_distill.teacher.generative"), split=args.split)


if __name__ == "__main__":
    run_command(main)
